"""AlignedReID in Keras 3 (TensorFlow backend).

Backbones, the two-branch model, distances and losses, mutual learning, the
input pipelines (tf.data, and a keras PyDataset without TensorFlow), feature extraction and gradient verification.

Public names are importable from the package root; their modules (and
TensorFlow) are loaded on first use, so ``import reid_tf`` stays cheap.
Submodules (``reid_tf.distances``, ``reid_tf.losses``, ...) are imported as
usual.
"""

from reid_common import lazy_exports

_EXPORTS = {
    # the network and its inference view
    "build_model": "model",
    "inference_model": "model",
    "has_local_branch": "model",
    # backbone registry
    "available_backbones": "backbones",
    "get_backbone": "backbones",
    "register_backbone": "backbones",
    # training models and settings
    "AlignedReIDModel": "training",
    "MutualAlignedReID": "training",
    "TrainConfig": "config",
    "ConfigError": "config",
    # input pipeline
    "make_train_dataset": "data",
    "make_eval_dataset": "data",
    "make_train_pydataset": "pydataset",
    "eval_batches": "image_io",
    # feature extraction
    "ExtractError": "extract",
    "ImageReadError": "extract",
    "load_model": "extract",
    "as_feature_model": "extract",
    "extract_features": "extract",
    "extract_test_split": "extract",
    "write_test_dump": "extract",
    "extract_dump": "extract",
    # search and export
    "SearchError": "search",
    "SearchResult": "search",
    "search_images": "search",
    "ExportError": "export",
    "ExportFailed": "export",
    "export_model": "export",
    "check_artefact": "export",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
