"""The synthetic-cache lines of a run name the prepared dataset's folder, the
one that holds ``manifest.jsonl`` (what reid-extract and --data accept)."""

import re
from pathlib import Path

from data_prep import load_manifest
from reid_tf.config import TrainConfig
from reid_tf.train_data import prepare_synthetic


def test_first_and_cached_runs_print_the_prepared_folder(tmp_path):
    cfg = TrainConfig(cache_dir=str(tmp_path / "cache"), synthetic_identities=8,
                      synthetic_images=4, image_size=(32, 16))
    lines = []
    prepared = prepare_synthetic(cfg, lines.append)
    prepare_synthetic(cfg, lines.append)
    first, again = lines
    printed = [Path(re.search(r"(/\S+)", line).group(1)) for line in (first, again)]
    assert "generating" in first and again.endswith("(cached)")
    assert printed == [prepared, prepared]
    assert prepared.name == "prepared" and (prepared / "manifest.jsonl").is_file()
    assert load_manifest(printed[0]).dataset == "synthetic"
