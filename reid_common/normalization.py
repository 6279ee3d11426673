"""Which features are scaled to unit length before the distances.

``"none"`` (the paper), ``"both"`` (every global row and every local part) or
``"local"`` (the local parts only, the AlignedReID++ choice). ``True`` and
``False`` are read as ``"both"`` and ``"none"`` (the older boolean setting).
"""

NORMALIZE_MODES = ("none", "both", "local")


def normalize_mode(value, what="normalize_features"):
    """``value`` as one of :data:`NORMALIZE_MODES`.

    Args:
        value: a mode name, a bool (``True``: ``"both"``) or None (``"none"``).
        what: the setting's name, for the error message.

    Returns:
        str.

    Raises:
        ValueError: anything else; the message starts with ``what``.

    Example:
        >>> normalize_mode(True), normalize_mode(False), normalize_mode("local")
        ('both', 'none', 'local')
    """
    if value is None or value is False:
        return "none"
    if value is True:
        return "both"
    if isinstance(value, str) and value in NORMALIZE_MODES:
        return value
    if type(value).__name__ == "bool_":  # numpy's bool, without importing numpy
        return "both" if bool(value) else "none"
    raise ValueError(f"{what}: expected one of {', '.join(NORMALIZE_MODES)} "
                     f"(or true / false), got {value!r}")


def normalizes_global(value):
    """Whether mode ``value`` scales the global feature.

    Example:
        >>> normalizes_global("local"), normalizes_global(True)
        (False, True)
    """
    return normalize_mode(value) == "both"


def normalizes_local(value):
    """Whether mode ``value`` scales every local part.

    Example:
        >>> normalizes_local("local"), normalizes_local("none")
        (True, False)
    """
    return normalize_mode(value) != "none"
