"""Converters from the distributed ReID datasets to one manifest format, the
synthetic misalignment dataset, and merging of training sets.

This package imports neither TensorFlow nor ``reference``.
"""
