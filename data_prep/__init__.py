"""Converters from the distributed ReID datasets to one manifest format, the
synthetic misalignment dataset, and merging of training sets.

Public API: the names in ``__all__`` (loaded on first use), the
``data_prep.synthetic`` generator and the ``reid-prep`` CLI
(``data_prep.cli``). This package imports neither TensorFlow, ``reference``
nor ``reid_tf``.
"""

from reid_common import lazy_exports

_EXPORTS = {
    "IMAGE_SUFFIXES": "_io",
    "Manifest": "manifest",
    "ManifestError": "manifest",
    "PrepError": "_io",
    "Split": "manifest",
    "hdf5_outside_file": "hdf5_safety",
    "load_manifest": "manifest",
    "merge_train": "combine",
    "write_manifest": "manifest",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
