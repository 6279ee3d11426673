"""``train.py --config FILE`` and the paper's recipes in configs/.

The paper's numbers below are transcribed from the paper (section 4.2 of
Zhang et al. 2017, arXiv 1711.08184), not read from the code or the files.
"""

import json
from pathlib import Path

import pytest

from reid_tf.config import TrainConfig
from reid_tf.train_cli import main, parse_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

# ---- the paper, section 4.2
PAPER_COMMON = {
    "image_size": [224, 224],           # "every image resized to 224 x 224"
    "P": 40, "K": 4,                    # "160 images, 4 per identity (40 identities)"
    "steps_per_epoch": 2000,            # "2,000 batches per epoch"
    "global_margin": 0.5, "local_margin": 0.5,   # TriHard margins 0.5
    "local_mining": "global",           # "hard samples mined by the global distance only"
    "flip": True,                       # random horizontal flip
}
PAPER_PLAIN = {"lr": 1e-3, "lr_milestones": [80, 160], "lr_values": [1e-3, 1e-4, 1e-5]}
PAPER_MUTUAL = {"lr": 3e-4, "lr_milestones": [60, 120], "lr_values": [3e-4, 1e-4, 1e-5],
                "mutual": True, "mutual_kl_weight": 0.01, "mutual_metric_weight": 0.001,
                "backbone": "resnet50", "peer_backbone": "resnet50x"}
RECIPES = {
    "alignedreid_resnet50.yaml": {**PAPER_PLAIN, "backbone": "resnet50", "weights": "imagenet",
                                  "no_local": False, "unaligned_local": False},
    "alignedreid_resnet50x.yaml": {**PAPER_PLAIN, "backbone": "resnet50x",
                                   "no_local": False, "unaligned_local": False},
    "baseline_resnet50.yaml": {**PAPER_PLAIN, "backbone": "resnet50", "no_local": True},
    "gl_baseline_resnet50.yaml": {**PAPER_PLAIN, "backbone": "resnet50",
                                  "unaligned_local": True},
    "mutual_resnet50_resnet50x.yaml": {**PAPER_MUTUAL, "weights": "imagenet", "no_local": False},
}


def test_every_shipped_recipe_is_tested():
    assert sorted(p.name for p in CONFIGS.iterdir()) == sorted(RECIPES)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_validates_and_holds_the_papers_numbers(name):
    cfg = parse_config(["--config", str(CONFIGS / name)])
    for key, want in {**PAPER_COMMON, **RECIPES[name]}.items():
        got = getattr(cfg, key)
        if isinstance(want, float):
            assert got == pytest.approx(want, rel=1e-12), key
        else:
            assert got == want, key
    assert cfg.id_weight > 0  # the metric losses always go with the ID loss
    first, second = RECIPES[name]["lr_milestones"]
    values = RECIPES[name]["lr_values"]
    assert [cfg.lr_at_epoch(e) for e in (0, first - 1, first, second - 1, second)] == \
        pytest.approx([values[0], values[0], values[1], values[1], values[2]])


def test_command_line_overrides_the_file(tmp_path):
    cfg = parse_config(["--config", str(CONFIGS / "alignedreid_resnet50.yaml"), "--P", "8",
                        "--epochs", "3", "--k1", "7"])
    assert (cfg.P, cfg.epochs, cfg.rerank_k1, cfg.K) == (8, 3, 7, 4)


def test_json_and_yaml_files_and_flag_style_keys(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"epochs": 3, "k1": 9, "flip": False}))
    (tmp_path / "a.yaml").write_text("epochs: 3\nrerank_k1: 9\nflip: false\n")
    a = parse_config(["--config", str(tmp_path / "a.json")])
    b = parse_config(["--config", str(tmp_path / "a.yaml")])
    assert a == b and (a.epochs, a.rerank_k1, a.flip) == (3, 9, False)


def test_a_runs_config_json_repeats_the_run(tmp_path):
    cfg = TrainConfig(epochs=3, steps_per_epoch=7, mutual=True, P=6, K=3, json="-",
                      run_dir=str(tmp_path / "r")).resolved()
    (tmp_path / "config.json").write_text(cfg.to_json())
    again = parse_config(["--config", str(tmp_path / "config.json")])
    assert again == cfg
    # config.json of a run made before --json took a PATH
    old = json.loads(cfg.to_json())
    old["json"] = False
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert parse_config(["--config", str(tmp_path / "old.json")]).json is None


@pytest.mark.parametrize("text, needles", [
    ("epochz: 3\n", ["epochz", "unknown setting"]),
    ("epochs: three\n", ["epochs", "expected int"]),
    ("epochs: 2.5\n", ["epochs", "expected int"]),
    ("flip: 1\n", ["flip", "true or false"]),
    ("backbone: vgg\n", ["backbone", "vgg"]),
    ("k1: 3\nrerank_k1: 4\n", ["rerank_k1", "same setting"]),
    ("- 1\n- 2\n", ["mapping"]),
    ("epochs: [1\n", ["not valid YAML"]),
])
def test_bad_config_file_is_one_line_naming_file_and_key(tmp_path, capsys, text, needles):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["--config", str(path), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"train.py: error: {path}"), err
    for needle in needles:
        assert needle in err[0]
    assert not (tmp_path / "run").exists()


def test_missing_config_file(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "none.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "none.yaml" in err[0] and "cannot read" in err[0]
