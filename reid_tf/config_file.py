"""Training settings from a file: ``train.py --config FILE`` (JSON or YAML).

A config file is one mapping from setting names to values. The names are the
keys of a run's ``config.json`` (the :class:`reid_tf.config.TrainConfig`
field names, ``steps_per_epoch``); a flag's own name works too (``k1`` for
``--k1``, ``extract_batch_size`` for ``--extract-batch-size``), except the
switches spelled ``--no-...``, whose key is the setting they turn off
(``flip: false``). So a run's ``config.json`` is itself a config file, and
the recipes in ``configs/`` are short YAML files. Values are converted as
the flags' values are (``1e-3`` written in YAML is a number); an unknown key
or a value of the wrong kind is a :class:`reid_tf.config.ConfigError` that
names the file and the key.
"""

import dataclasses
import json
import os

from reid_tf.config import ConfigError, TrainConfig

#: Element types of the list settings (the others take the default's type).
ELEMENT_TYPES = {"image_size": int, "lr_milestones": int, "lr_values": float, "data": str}
_FLOAT_SETTINGS = ("lr",)


def setting_type(f):
    """The type of one value of :class:`TrainConfig` field ``f`` (an element for lists).

    Example:
        >>> import dataclasses
        >>> fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
        >>> setting_type(fields["lr"]), setting_type(fields["image_size"])
        (<class 'float'>, <class 'int'>)
    """
    if f.name in ELEMENT_TYPES:
        return ELEMENT_TYPES[f.name]
    if f.name in _FLOAT_SETTINGS:
        return float
    default = getattr(TrainConfig(), f.name)
    return type(default) if default is not None else str


def setting_keys():
    """Every key a config file may use, mapped to its field name.

    Example:
        >>> keys = setting_keys()
        >>> keys["k1"], keys["rerank_k1"], keys["flip"], "no_flip" in keys
        ('rerank_k1', 'rerank_k1', 'flip', False)
    """
    keys = {}
    for f in dataclasses.fields(TrainConfig):
        keys[f.name] = f.name
        if f.metadata["flag"] is not None and f.metadata["action"] != "store_false":
            keys[f.metadata["flag"].lstrip("-").replace("-", "_")] = f.name
    return keys


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    try:
        if os.fspath(path).lower().endswith(".json"):
            return json.loads(text)
        import yaml

        return yaml.safe_load(text)
    except ValueError as exc:  # json.JSONDecodeError
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    except Exception as exc:  # yaml.YAMLError
        message = " ".join(str(exc).split())
        raise ConfigError(f"{path}: not valid YAML: {message}") from None


def _convert(path, key, f, value):
    kind = setting_type(f)
    meta = f.metadata
    if meta["action"] is not None:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: {key}: expected true or false, got {value!r}")
        return value
    if value is None:
        return None
    if meta["nargs"] not in (None, "?"):
        values = value if isinstance(value, list) else [value]
        return [_scalar(path, key, kind, v, meta["choices"]) for v in values]
    return _scalar(path, key, kind, value, meta["choices"])


def _scalar(path, key, kind, value, choices):
    if isinstance(value, (bool, list, dict)) or value is None:
        raise ConfigError(f"{path}: {key}: expected {kind.__name__}, got {value!r}")
    try:
        number = float(value) if kind is int and isinstance(value, str) else value
        if kind is int and float(number) != int(float(number)):
            raise ValueError
        converted = kind(int(float(number))) if kind is int else kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: {key}: expected {kind.__name__}, got {value!r}") from None
    if choices is not None and converted not in choices:
        raise ConfigError(f"{path}: {key}: {converted!r} is not one of "
                          f"{', '.join(map(str, choices))}")
    return converted


def load_config_file(path):
    """The settings of a JSON or YAML config file, as :class:`TrainConfig` keyword arguments.

    Args:
        path: ``.json`` (JSON) or any other name (YAML, of which JSON is a subset).

    Returns:
        dict field name -> value (converted to the setting's type).

    Raises:
        ConfigError: unreadable file, not a mapping, an unknown key, a key
            given twice (under two names) or a value of the wrong kind; the
            message names the file and the key.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "r.yaml")
        >>> _ = open(path, "w").write("epochs: 3\\nlr: 1e-3\\nk1: 30\\nflip: false\\n")
        >>> sorted(load_config_file(path).items())
        [('epochs', 3), ('flip', False), ('lr', 0.001), ('rerank_k1', 30)]
    """
    values = _read(path)
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of setting names to values")
    keys = setting_keys()
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    out, given_as = {}, {}
    for key, value in values.items():
        name = keys.get(str(key))
        if name is None:
            raise ConfigError(f"{path}: unknown setting {key!r} (the keys are the names "
                              "in a run's config.json; see train.py --help)")
        if name in out:
            raise ConfigError(f"{path}: {key}: the same setting as {given_as[name]}")
        if fields[name].metadata["flag"] is None:  # derived from the others (config.json)
            continue
        if name == "json" and isinstance(value, bool):  # the former switch: stdout or none
            value = "-" if value else None
        if name == "normalize_features" and isinstance(value, bool):  # the former switch
            value = "both" if value else "none"
        out[name] = _convert(path, key, fields[name], value)
        given_as[name] = key
    return out
