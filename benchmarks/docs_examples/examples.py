"""The generators of the regenerated blocks: each runs the documented command.

Every generator returns the block's new body. ``mask`` turns a body into the
form documents are compared in: what changes from run to run of the same
code (wall times, the timestamped run directory) is masked, nothing else.
"""

import contextlib
import io
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.docs_examples.blocks import fenced
from benchmarks.docs_examples.cli_inventory import inventory_table

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Example:
    """One regenerated block: its name, generator, cost and what varies."""

    name: str
    command: str
    generate: object
    cheap: bool
    masks: tuple = ()

    def mask(self, body):
        """``body`` with the run-to-run varying parts replaced by ``<...>``."""
        for pattern, replacement in self.masks:
            body = re.sub(pattern, replacement, body, flags=re.M)
        return body


def evaluate_demo():
    """``reid-evaluate --demo runs/demo`` (in a temporary folder): its table."""
    from reference.evaluate_cli import main

    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        out = io.StringIO()
        try:
            os.chdir(tmp)
            with contextlib.redirect_stdout(out):
                status = main(["--demo", "runs/demo", "--quiet"])
        finally:
            os.chdir(cwd)
    if status != 0:
        raise RuntimeError(f"reid-evaluate --demo exited with status {status}")
    return fenced(out.getvalue())


def default_run():
    """``python train.py`` with no arguments (in a temporary folder): its table.

    Minutes on a CPU; the synthetic dataset is cached as for any run.
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([sys.executable, str(ROOT / "train.py")], cwd=tmp, env=env,
                              capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"train.py exited with status {proc.returncode}: "
                           f"{proc.stderr.strip().splitlines()[-1:]}")
    return fenced(proc.stdout)


def cli_flags():
    """docs/cli.md's flag inventory, from the tools' parsers."""
    return inventory_table() + "\n"


_SECONDS_COLUMN = (r"^(.*\S)\s+\d+\.\d+$", r"\1 <s>")
EXAMPLES = {e.name: e for e in (
    Example("evaluate-demo", "reid-evaluate --demo runs/demo", evaluate_demo, True,
            (_SECONDS_COLUMN, (r"^(dump\s.*\S)\s+s$", r"\1 <s>"))),
    Example("cli-flags", "(the tools' argument parsers)", cli_flags, True),
    Example("default-run", "python train.py", default_run, False,
            ((r"runs/\d{8}-\d{6}", "runs/<timestamp>"),
             (r"\(training \d+ s, total \d+ s\)", "(<seconds>)"))),
)}
