"""``python -m benchmarks.ablation`` runs :func:`benchmarks.ablation.cli.main`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
