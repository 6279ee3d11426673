"""Names of the evaluation protocols, defined once for every tool.

``market1501`` (also DukeMTMC-reID and MSMT17: exclude same-camera matches of
the query identity), ``cuhk03`` (single-shot, random gallery draws) and
``cuhk-sysu`` (a gallery list per query).
"""

PROTOCOLS = ("market1501", "cuhk03", "cuhk-sysu")
PROTOCOL_ALIASES = {"duke": "market1501", "dukemtmc": "market1501", "msmt17": "market1501"}
PROTOCOL_NAMES = PROTOCOLS + tuple(PROTOCOL_ALIASES)


def canonical_protocol(name, what="protocol"):
    """The protocol ``name`` (case-insensitive, aliases resolved) as one of ``PROTOCOLS``.

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: an unknown protocol; the message starts with ``what``.
    """
    if not isinstance(name, str):
        raise TypeError(f"{what}: expected a string, got {name!r}")
    key = name.lower()
    key = PROTOCOL_ALIASES.get(key, key)
    if key not in PROTOCOLS:
        raise ValueError(
            f"{what}: expected one of {', '.join(PROTOCOL_NAMES)}, got {name!r}"
        )
    return key
