"""Converters from the distributed ReID datasets to one manifest format, the
synthetic misalignment dataset, and merging of training sets.

Public API: the names in ``__all__`` (loaded on first use), the
``data_prep.synthetic`` generator and the ``reid-prep`` CLI
(``data_prep.cli``). This package imports neither TensorFlow, ``reference``
nor ``reid_tf``.
"""

_EXPORTS = {
    "IMAGE_SUFFIXES": "data_prep._io",
    "Manifest": "data_prep.manifest",
    "ManifestError": "data_prep.manifest",
    "PrepError": "data_prep._io",
    "Split": "data_prep.manifest",
    "hdf5_outside_file": "data_prep.hdf5_safety",
    "load_manifest": "data_prep.manifest",
    "merge_train": "data_prep.combine",
    "write_manifest": "data_prep.manifest",
}

__all__ = [
    "IMAGE_SUFFIXES",
    "Manifest",
    "ManifestError",
    "PrepError",
    "Split",
    "hdf5_outside_file",
    "load_manifest",
    "merge_train",
    "write_manifest",
]


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'data_prep' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
