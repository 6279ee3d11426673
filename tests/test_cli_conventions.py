"""The conventions every command-line tool shares (docs/cli.md), without TensorFlow.

One flag per concept (the unified names are transcribed here, not read from
the code), former spellings that still work with one deprecation line,
``--json PATH`` in every tool that produces a result (``-`` for stdout, an
input refused before any work), ``--quiet`` that leaves stderr empty, and
``--help`` that loads no TensorFlow. The TensorFlow commands' own runs are
checked in ``tests/train/test_cli_startup.py``.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.docs_examples.cli_inventory import CLASHES, CONCEPTS, flag_inventory, \
    tool_parsers

REPO = Path(__file__).resolve().parents[1]
NOISE = ("oneDNN", "cuda", "absl", "WARNING: All log messages", "I0000", "E0000")


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _one_error_line(err, *needles):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and ": error: " in lines[0] and "Traceback" not in err, err
    for needle in needles:
        assert str(needle) in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------ one flag per concept
#: The unified spellings (issue 13): flag -> tools that must take it.
UNIFIED = {
    "--normalize-features": ["train.py", "reid-extract", "reid-search", "reid-evaluate",
                             "reid-human create", "benchmarks.ablation"],
    "--extract-batch-size": ["train.py", "reid-extract", "reid-search"],
    "--k1": ["train.py", "reid-search", "reid-evaluate", "reid-human create"],
    "--k2": ["train.py", "reid-search", "reid-evaluate", "reid-human create"],
    "--lambda": ["train.py", "reid-search", "reid-evaluate", "reid-human create"],
    "--queries": ["reid-evaluate", "reid-human create", "reid-human demo"],
}
#: Former spellings that no tool shows any more.
FORMER = ("--normalize", "--eval-batch-size", "--rerank-k1", "--rerank-k2", "--rerank-lambda",
          "--num-queries")


def test_unified_flags_are_taken_by_every_tool_of_their_concept():
    flags, _ = flag_inventory()
    for flag, tools in UNIFIED.items():
        assert set(tools) <= set(flags.get(flag, [])), (flag, flags.get(flag))
    for old in FORMER:
        assert old not in flags, (old, flags[old])
    assert "--batch-size" not in flags  # the training batch is --P x --K


def test_every_shared_flag_names_one_concept():
    flags, _ = flag_inventory()
    shared = [f for f, tools in flags.items() if len({t.split()[0] for t in tools}) > 1]
    unnamed = [f for f in shared if f not in CONCEPTS and f not in CLASHES]
    assert unnamed == [], f"add these flags to CONCEPTS: {unnamed}"
    concepts = list(CONCEPTS.values())
    assert len(concepts) == len(set(concepts)), "two flags for one concept"


def test_every_result_tool_takes_json_path():
    no_result = {"reid-prep", "reid-human", "reid-human serve"}
    for tool, parser in tool_parsers():
        actions = [a for a in parser._actions if "--json" in a.option_strings]
        if tool in no_result:
            assert not actions, tool
            continue
        assert len(actions) == 1, tool
        assert actions[0].nargs is None and actions[0].metavar == "PATH", tool


def test_former_spellings_are_hidden_from_help():
    seen = 0
    for tool, parser in tool_parsers():
        text = parser.format_help()
        for old in getattr(parser, "_deprecated", {}):
            seen += 1
            assert re.search(rf"(?<![\w-]){re.escape(old)}(?![\w-])", text) is None, (tool, old)
    assert seen >= 9


def _parsers():
    from benchmarks.ablation.cli import build_parser as ablation
    from human_study.cli import build_parser as human
    from reference.evaluate_cli import build_parser as evaluate
    from reid_tf.extract_cli import build_parser as extract
    from reid_tf.search_cli import build_parser as search
    from reid_tf.train_cli import build_parser as train

    return {"reid-extract": (extract, ["--model", "m.keras", "--data", "d", "--out", "o.h5"]),
            "reid-search": (search, ["--model", "m.keras", "--gallery", "g", "--query", "q.jpg"]),
            "reid-evaluate": (evaluate, ["d.h5"]),
            "reid-human create": (human, ["create", "d.h5", "--out", "s.sqlite", "--queries", "3",
                                          "--seed", "0"]),
            "train.py": (train, []), "benchmarks.ablation": (ablation, [])}


ALIASES = [
    ("reid-extract", ["--batch-size", "7"], ["--extract-batch-size", "7"]),
    ("reid-extract", ["--normalize"], ["--normalize-features"]),
    ("reid-search", ["--batch-size=3"], ["--extract-batch-size=3"]),
    ("reid-evaluate", ["--normalize"], ["--normalize-features"]),
    ("reid-evaluate", ["--num-queries", "3"], ["--queries", "3"]),
    ("reid-human create", ["--normalize"], ["--normalize-features"]),
    ("train.py", ["--eval-batch-size", "16"], ["--extract-batch-size", "16"]),
    ("train.py", ["--rerank-k1", "30"], ["--k1", "30"]),
    ("train.py", ["--rerank-k2=4"], ["--k2=4"]),
    ("train.py", ["--rerank-lambda", "0.5"], ["--lambda", "0.5"]),
]


@pytest.mark.parametrize("tool, old, new", ALIASES, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else v)
def test_former_spelling_works_with_one_deprecation_line(tool, old, new, capsys):
    build, base = _parsers()[tool]
    parser = build()
    with_new = parser.parse_args(base + new)
    assert capsys.readouterr().err == ""
    with_old = build().parse_args(base + old)
    err = capsys.readouterr().err
    old_flag, new_flag = old[0].split("=")[0], new[0].split("=")[0]
    prog = {"benchmarks.ablation": "python -m benchmarks.ablation"}.get(tool, tool)
    assert err == f"{prog}: warning: {old_flag} is deprecated; use {new_flag}\n"
    assert vars(with_old) == vars(with_new)
    default = build().parse_args(base)
    capsys.readouterr()
    assert vars(with_new) != vars(default)  # the flag did something


def test_former_spelling_end_to_end(tmp_path, capsys):
    from reference.evaluate_cli import main

    assert main(["--demo", str(tmp_path / "a"), "--normalize", "--json", "-", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert err == "reid-evaluate: warning: --normalize is deprecated; use --normalize-features\n"
    old = json.loads(out)
    assert main(["--demo", str(tmp_path / "b"), "--normalize-features", "--json", "-",
                 "--quiet"]) == 0
    new = json.loads(capsys.readouterr().out)
    assert main(["--demo", str(tmp_path / "c"), "--json", "-", "--quiet"]) == 0
    plain = json.loads(capsys.readouterr().out)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("seconds", "dump")}
                          for r in rows]
    assert strip(old) == strip(new) != strip(plain)
    assert all(r["normalize"] for r in old)


def test_train_batch_size_points_at_the_two_batches(capsys):
    from reid_tf.train_cli import main

    assert main(["--batch-size", "160"]) == 2
    _one_error_line(capsys.readouterr().err, "--batch-size", "--P", "--K", "--extract-batch-size")


# ------------------------------------------------------------------- --json PATH
def test_bare_json_asks_for_a_path(capsys):
    from reid_tf.train_cli import main

    assert main(["--json"]) == 2
    _one_error_line(capsys.readouterr().err, "--json", "PATH, or '-'")


def _write(path, text="x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _json_cases(tmp):
    model = _write(tmp / "m.keras")
    query = _write(tmp / "q.jpg")
    data = _write(tmp / "data" / "manifest.jsonl", "{}\n")
    config = _write(tmp / "c.yaml", "epochs: 1\n")
    dump = _write(tmp / "d.h5")
    analysis = _write(tmp / "notes.md")
    src = tmp / "src"
    src.mkdir()
    return {
        "reid-extract": ("reid_tf.extract_cli", ["--model", model, "--data", data.parent,
                                                  "--out", tmp / "o.h5", "--json", data], data),
        "reid-search": ("reid_tf.search_cli", ["--model", model, "--gallery", tmp / "g",
                                                "--query", query, "--json", query], query),
        "reid-export": ("reid_tf.export_cli", [model, "--format", "tflite", "--out",
                                                tmp / "m.tflite", "--json", model], model),
        "train.py": ("reid_tf.train_cli", ["--config", config, "--json", config], config),
        "reid-prep": ("data_prep.cli", ["market1501", src, tmp / "dst", "--json",
                                         tmp / "dst"], None),
        "reid-human create": ("human_study.cli", ["create", dump, "--out", tmp / "s.sqlite",
                                                   "--queries", "3", "--seed", "0",
                                                   "--json", dump], dump),
        "benchmarks.ablation": ("benchmarks.ablation.cli", ["--report-only", "--doc", "",
                                                            "--plot", "", "--analysis", analysis,
                                                            "--json", analysis], analysis),
        "reid-gradcheck": ("reid_tf.gradcheck.cli", ["--dump", dump, "--json", dump], dump),
    }


@pytest.mark.parametrize("tool", ["reid-extract", "reid-search", "reid-export", "train.py",
                                  "reid-prep", "reid-human create", "reid-gradcheck"])
def test_json_path_that_is_an_input_is_refused_before_any_work(tool, tmp_path, capsys,
                                                               monkeypatch):
    import importlib

    monkeypatch.chdir(tmp_path)
    module, argv, kept = _json_cases(tmp_path)[tool]
    before = _digest(kept) if kept is not None else None
    status = importlib.import_module(module).main([str(a) for a in argv])
    assert status == 2
    _one_error_line(capsys.readouterr().err, "--json")
    if kept is not None:
        assert _digest(kept) == before
    assert not (tmp_path / "dst").exists() and not (tmp_path / "s.sqlite").exists()


def test_json_dash_prints_json_instead_of_the_table(tmp_path, capsys):
    from reference.evaluate_cli import main

    assert main(["--demo", str(tmp_path), "--json", "-", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 1
    assert [r["distance"] for r in json.loads(out)] == ["global", "local", "global+local"]
    assert not (tmp_path / "-").exists() and not Path("-").exists()


# ----------------------------------------------------------------------- --quiet
def test_quiet_evaluate_prints_no_progress_and_no_wrote_lines(tmp_path, capsys):
    from reference.evaluate_cli import main

    outs = [tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "r.png"]
    assert main(["--demo", str(tmp_path / "d"), "--json", str(outs[0]), "--csv", str(outs[1]),
                 "--plot", str(outs[2]), "--ranked-list", "3", "--queries", "2",
                 "--out", str(tmp_path / "rep"), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "global+local" in out
    assert all(p.stat().st_size > 0 for p in outs) and list((tmp_path / "rep").iterdir())
    # the demo dump has no images: the placeholders are warnings, and stay
    assert all("placeholder" in line and "wrote" not in line for line in err.splitlines())
    assert main(["--demo", str(tmp_path / "e"), "--json", str(tmp_path / "s.json")]) == 0
    assert f"wrote {tmp_path / 's.json'}" in capsys.readouterr().err


def test_quiet_reid_prep(tmp_path, capsys):
    from data_prep.cli import main
    from tests.data_prep import fakes

    fakes.make_market(tmp_path / "src")
    assert main(["market1501", str(tmp_path / "src"), str(tmp_path / "dst"), "--quiet",
                 "--json", str(tmp_path / "r.json")]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "manifest.jsonl" in out
    assert json.loads((tmp_path / "r.json").read_text())["dataset"] == "market1501"
    assert main(["synthetic", str(tmp_path / "syn"), "--num-identities", "4",
                 "--images-per-identity", "4", "--num-cameras", "2", "--height", "32",
                 "--width", "16", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "synthetic:" in out


def test_quiet_reid_human(tmp_path, capsys, monkeypatch):
    from human_study.cli import main
    from tests.human_study.conftest import build_dump, random_population

    dump, root = build_dump(tmp_path, **random_population(0))
    assert main(["create", dump, "--out", str(tmp_path / "s.sqlite"), "--queries", "4",
                 "--seed", "0", "--image-root", root, "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "4 queries" in out
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--no-serve", "--dir", "demo", "--queries", "3", "--synthetic",
                 "--quiet", "--json", "demo.json"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "annotator demo" in out


def test_quiet_docs_examples(capsys):
    from benchmarks.docs_examples.cli import main

    assert main(["cli-flags", "--check", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------- --help, --version
MODULES = {
    "train.py": [str(REPO / "train.py")],
    "reid-extract": ["-m", "reid_tf.extract"],
    "reid-search": ["-m", "reid_tf.search_cli"],
    "reid-export": ["-m", "reid_tf.export_cli"],
    "reid-gradcheck": ["-m", "reid_tf.gradcheck"],
    "reid-evaluate": [str(REPO / "evaluate.py")],
    "reid-prep": ["-m", "data_prep"],
    "reid-human": ["-m", "human_study"],
    "benchmarks.ablation": ["-m", "benchmarks.ablation"],
}
PROGS = {"train.py": "train.py", "benchmarks.ablation": "python -m benchmarks.ablation"}

_PROBE = ("import runpy, sys; sys.argv = sys.argv[1:]; "
          "target = sys.argv[0]; "
          "run = (lambda: runpy.run_module(sys.argv.pop(1), run_name='__main__')) "
          "if target == '-m' else (lambda: runpy.run_path(target, run_name='__main__'))\n"
          "try:\n    run()\nexcept SystemExit as e:\n    code = e.code\n"
          "print('TF-LOADED' if 'tensorflow' in sys.modules else 'TF-FREE', file=sys.stderr)\n"
          "sys.exit(code)")


@pytest.mark.parametrize("tool", sorted(MODULES))
def test_help_and_version_load_no_tensorflow_and_print_no_noise(tool):
    env = dict(os.environ, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    for flag in ("--help", "--version"):
        proc = subprocess.run([sys.executable, "-c", _PROBE, *MODULES[tool], flag], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.strip() == "TF-FREE", proc.stderr
        assert not any(n in proc.stderr for n in NOISE)
        prog = PROGS.get(tool, tool.split()[0])
        if flag == "--version":
            assert proc.stdout.startswith(f"{prog} (alignedreid "), proc.stdout
        else:
            assert proc.stdout.startswith(f"usage: {prog}"), proc.stdout[:80]
            assert "--version" in proc.stdout
