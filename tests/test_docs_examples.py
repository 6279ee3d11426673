"""The command outputs README.md and docs/*.md show are what the code prints.

``python -m benchmarks.docs_examples`` rewrites the blocks marked
``<!-- regen: NAME -->``; these tests re-run the cheap generators and fail
when a document differs (run times masked), so a change of output without a
re-run of the script is caught.
"""

import pytest

from benchmarks.docs_examples.blocks import BlockError, find_blocks, replace_blocks
from benchmarks.docs_examples.cli import differences, documented, main
from benchmarks.docs_examples.examples import EXAMPLES, ROOT

CHEAP = sorted(name for name, example in EXAMPLES.items() if example.cheap)


def test_every_block_is_closed_and_known():
    documents = documented()
    names = {name for blocks in documents.values() for name, _ in blocks}
    assert names <= set(EXAMPLES)
    where = {name: {path.name for path, blocks in documents.items()
                    for n, _ in blocks if n == name} for name in EXAMPLES}
    assert "evaluate.md" in where["evaluate-demo"]
    assert "cli.md" in where["cli-flags"]
    assert "training.md" in where["default-run"]


@pytest.mark.parametrize("name", CHEAP)
def test_documented_output_is_what_the_code_prints(name):
    body = EXAMPLES[name].generate()
    diffs = differences(name, body, documented())
    assert diffs == [], ("documents differ from the code's output; run "
                         f"`python -m benchmarks.docs_examples {name}`:\n" + "\n".join(diffs))


def test_evaluate_demo_numbers_transcribed():
    """The demo's global row as measured when this test was written, typed in by hand."""
    text = (ROOT / "docs" / "evaluate.md").read_text(encoding="utf-8")
    block = dict(find_blocks(text))["evaluate-demo"]
    lines = block.splitlines()
    header = next(line for line in lines if line.startswith("dump")).split()
    row = dict(zip(header, next(line for line in lines if "  global  " in line).split()))
    assert {k: row[k] for k in ("protocol", "query", "gallery", "valid", "mAP", "mINP", "R1",
                                "R5", "R10")} == {
        "protocol": "market1501", "query": "120", "gallery": "1200", "valid": "120",
        "mAP": "22.68", "mINP": "6.86", "R1": "35.00", "R5": "60.00", "R10": "77.50"}


def test_a_changed_number_is_caught_and_a_run_time_is_not():
    text = (ROOT / "docs" / "evaluate.md").read_text(encoding="utf-8")
    block = dict(find_blocks(text))["evaluate-demo"]
    documents = {ROOT / "docs" / "evaluate.md": [("evaluate-demo", block)]}
    lines = block.splitlines()
    row = next(i for i, line in enumerate(lines) if "  local  " in line)
    fields = lines[row].rsplit(None, 1)
    slower = "\n".join(lines[:row] + [fields[0] + "  " + "97.3"] + lines[row + 1:]) + "\n"
    assert differences("evaluate-demo", slower, documents) == []
    wrong = slower.replace("market1501    120     1200    120  4", "market1501    120     "
                           "1200    120  5", 1)
    assert wrong != slower
    assert len(differences("evaluate-demo", wrong, documents)) == 1
    run = EXAMPLES["default-run"]
    assert run.mask("run directory: runs/20260101-120000 (training 60 s, total 68 s)") == \
        run.mask("run directory: runs/20261125-031628 (training 7 s, total 9 s)")
    assert run.mask("global  |  8.9") != run.mask("global  |  9.8")


def test_blocks_are_replaced_in_place_and_bad_markers_refused():
    text = "a\n<!-- regen: x -->\nold\n<!-- /regen -->\nb\n<!-- regen: y -->\nkeep\n<!-- /regen -->\n"
    new = replace_blocks(text, {"x": "```\nnew\n```\n"})
    assert new == ("a\n<!-- regen: x -->\n```\nnew\n```\n<!-- /regen -->\nb\n"
                   "<!-- regen: y -->\nkeep\n<!-- /regen -->\n")
    with pytest.raises(BlockError):
        find_blocks("<!-- regen: x -->\nno end\n")


def test_check_mode_and_usage_errors(capsys):
    assert main(["--check", "cli-flags"]) == 0
    assert main(["nonsense"]) == 2
    assert "unknown block 'nonsense'" in capsys.readouterr().err
