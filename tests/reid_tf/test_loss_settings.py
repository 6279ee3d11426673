"""LossSettings: round trip, validation, the trainers' configs (older flat ones too)."""

import json

import pytest

from reid_tf.config import ConfigError, TrainConfig
from reid_tf.loss_settings import LossSettings, LossSettingsError, field_names

NON_DEFAULT = {
    "global_margin": 0.3, "local_margin": 0.2, "normalize_features": "local",
    "id_weight": 0.5, "global_weight": 1.5, "local_weight": 2.0,
    "local_mining": "local", "aligned": False, "label_smoothing": 0.1,
}


def test_round_trip_through_json():
    settings = LossSettings(**NON_DEFAULT)
    data = json.loads(json.dumps(settings.to_dict()))
    assert data == NON_DEFAULT
    assert LossSettings.from_dict(data) == settings
    assert set(field_names()) == set(NON_DEFAULT)
    with pytest.raises(Exception):
        settings.id_weight = 2.0  # frozen


@pytest.mark.parametrize("field, value, needle", [
    ("global_margin", -0.1, "must be a finite number >= 0"),
    ("local_margin", float("nan"), "finite"),
    ("id_weight", "1", "finite"),
    ("local_weight", True, "finite"),
    ("label_smoothing", 1.0, "must be < 1"),
    ("local_mining", "both", "one of"),
    ("aligned", 1, "true or false"),
    ("normalize_features", "yes", "true or false"),
])
def test_invalid_values_name_their_field(field, value, needle):
    with pytest.raises(LossSettingsError) as info:
        LossSettings(**{field: value})
    assert info.value.field == field and needle in str(info.value)
    assert str(info.value).startswith(f"{field}: ")
    with pytest.raises(LossSettingsError):
        LossSettings().replace(**{field: value})


def test_unknown_name_is_refused():
    with pytest.raises(LossSettingsError, match="kl_weight"):
        LossSettings.from_dict({"kl_weight": 0.1})


def test_train_config_builds_and_validates_through_it():
    cfg = TrainConfig(global_margin=0.3, local_margin=0.2, normalize_features="local",
                      id_weight=0.5, global_weight=1.5, local_weight=2.0,
                      local_mining="local", unaligned_local=True, label_smoothing=0.1)
    assert cfg.loss_settings() == LossSettings(**NON_DEFAULT)
    with pytest.raises(ConfigError, match=r"^--label-smoothing: must be < 1 \(got 1.0\)$"):
        TrainConfig(label_smoothing=1.0).validate()
    with pytest.raises(ConfigError, match="^--local-weight: must be a finite number >= 0"):
        TrainConfig(local_weight=-1.0).validate()


def test_trainer_config_stores_settings_and_loads_flat_configs():
    from reid_tf.model import build_model
    from reid_tf.training import AlignedReIDModel, MutualAlignedReID

    net = build_model("tiny", 4, (64, 32, 3), local_channels=8)
    model = AlignedReIDModel(net, LossSettings(**NON_DEFAULT))
    config = model.get_config()
    assert config["loss_settings"] == NON_DEFAULT
    assert AlignedReIDModel.from_config(config).loss_settings == model.loss_settings
    # keyword overrides on top of a settings object
    assert AlignedReIDModel(net, LossSettings(**NON_DEFAULT), id_weight=0.25).id_weight == 0.25
    # a config written with the settings as top-level keys still loads
    flat = {k: v for k, v in config.items() if k != "loss_settings"}
    flat.update(NON_DEFAULT)
    assert AlignedReIDModel.from_config(flat).loss_settings == LossSettings(**NON_DEFAULT)
    with pytest.raises(LossSettingsError, match="label_smoothing"):
        AlignedReIDModel(net, label_smoothing=2.0)
    peer = build_model("tiny", 4, (64, 32, 3), with_local=False)
    mutual = MutualAlignedReID(net, peer, NON_DEFAULT, kl_weight=0.5)
    clone = MutualAlignedReID.from_config(mutual.get_config())
    assert clone.loss_settings == LossSettings(**NON_DEFAULT) and clone.kl_weight == 0.5
