"""Converters from the distributed ReID datasets to one manifest format, the
synthetic misalignment dataset, and merging of training sets.

This package imports neither TensorFlow nor ``reference``.
"""

_EXPORTS = {
    "load_manifest": "data_prep.manifest",
    "Manifest": "data_prep.manifest",
    "ManifestError": "data_prep.manifest",
    "Split": "data_prep.manifest",
    "merge_train": "data_prep.combine",
    "PrepError": "data_prep._io",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'data_prep' has no attribute {name!r}")
