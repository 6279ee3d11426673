"""The settings of the AlignedReID loss, as one serialisable value.

:class:`LossSettings` holds the nine hyper-parameters of one network's
AlignedReID objective (margins, term weights, mining, feature
normalisation, alignment, label smoothing). Both training models of
:mod:`reid_tf.training` take one, store it in their Keras config as a dict,
and ``TrainConfig.loss_settings()`` builds it from the command-line
settings. The values are checked once, when the object is created.

This module imports neither Keras nor TensorFlow.
"""

import dataclasses
import math

from reid_common import NORMALIZE_MODES, normalize_mode

LOCAL_MINING = ("global", "local")

_NON_NEGATIVE = ("global_margin", "local_margin", "id_weight", "global_weight",
                 "local_weight", "label_smoothing")
_FLAGS = ("aligned",)


class LossSettingsError(ValueError):
    """An invalid loss setting.

    Attributes:
        field: the :class:`LossSettings` field.
        detail: what is wrong, without the field name.

    Example:
        >>> str(LossSettingsError("id_weight", "must be >= 0"))
        'id_weight: must be >= 0'
    """

    def __init__(self, field, detail):
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class LossSettings:
    """Hyper-parameters of the AlignedReID loss of one network.

    loss = id_weight * ID loss + global_weight * global TriHard loss
         + local_weight * local TriHard loss (with a local branch).

    Args:
        global_margin: TriHard margin of the global distance (>= 0).
        local_margin: TriHard margin of the local distance (>= 0).
        normalize_features: which features are L2-normalised before the
            distances: ``"none"`` (the paper), ``"both"`` or ``"local"``
            (the local parts only, AlignedReID++); ``True`` / ``False`` are
            read as ``"both"`` / ``"none"``.
        id_weight, global_weight, local_weight: weights of the three terms
            (>= 0).
        local_mining: ``"global"`` (the paper: the local loss on the pairs
            mined by the global distance) or ``"local"`` (mined by the local
            distance).
        aligned: ``False`` uses the unaligned local distance (the paper's
            GL-Baseline).
        label_smoothing: label smoothing of the ID loss, in [0, 1).

    Raises:
        LossSettingsError: a value is out of range or of the wrong type.

    Example:
        >>> s = LossSettings(global_margin=0.3, local_mining="local")
        >>> LossSettings.from_dict(s.to_dict()) == s
        True
        >>> LossSettings(label_smoothing=1.0)
        Traceback (most recent call last):
        ...
        reid_tf.loss_settings.LossSettingsError: label_smoothing: must be < 1 (got 1.0)
    """

    global_margin: float = 0.5
    local_margin: float = 0.5
    normalize_features: str = "none"
    id_weight: float = 1.0
    global_weight: float = 1.0
    local_weight: float = 1.0
    local_mining: str = "global"
    aligned: bool = True
    label_smoothing: float = 0.0

    def __post_init__(self):
        self.validate()
        object.__setattr__(self, "normalize_features", normalize_mode(self.normalize_features))
        for name in _NON_NEGATIVE:
            object.__setattr__(self, name, float(getattr(self, name)))

    def validate(self):
        """Checks every value.

        Returns:
            None.

        Raises:
            LossSettingsError: the first invalid value (names its field).

        Example:
            >>> LossSettings().validate()
        """
        for name in _NON_NEGATIVE:
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value) or value < 0):
                raise LossSettingsError(name, f"must be a finite number >= 0 (got {value!r})")
        if self.label_smoothing >= 1:
            raise LossSettingsError("label_smoothing",
                                    f"must be < 1 (got {self.label_smoothing!r})")
        for name in _FLAGS:
            if not isinstance(getattr(self, name), bool):
                raise LossSettingsError(name, f"must be true or false "
                                              f"(got {getattr(self, name)!r})")
        try:
            normalize_mode(self.normalize_features)
        except ValueError:
            raise LossSettingsError("normalize_features",
                                    f"must be one of {', '.join(NORMALIZE_MODES)}, or true or "
                                    f"false (got {self.normalize_features!r})") from None
        if self.local_mining not in LOCAL_MINING:
            raise LossSettingsError("local_mining", f"must be one of {LOCAL_MINING} "
                                                    f"(got {self.local_mining!r})")

    def replace(self, **changes):
        """A copy with some values changed (validated).

        Args:
            **changes: field name -> new value.

        Returns:
            ``LossSettings``.

        Example:
            >>> LossSettings().replace(id_weight=0.5).id_weight
            0.5
        """
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """The settings as a JSON-compatible dict.

        Returns:
            dict field name -> value.

        Example:
            >>> LossSettings().to_dict()["local_mining"]
            'global'
        """
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Builds settings from :meth:`to_dict` output (missing keys: defaults).

        Args:
            values: dict field name -> value.

        Returns:
            ``LossSettings``.

        Raises:
            LossSettingsError: an unknown name or an invalid value.

        Example:
            >>> LossSettings.from_dict({"aligned": False}).aligned
            False
        """
        unknown = sorted(set(values) - set(field_names()))
        if unknown:
            raise LossSettingsError(unknown[0], "not a loss setting")
        return cls(**values)


def field_names():
    """The names of the :class:`LossSettings` fields, in order.

    Returns:
        tuple of str.

    Example:
        >>> len(field_names())
        9
    """
    return tuple(f.name for f in dataclasses.fields(LossSettings))
