"""``python -m benchmarks.gpu`` runs :func:`benchmarks.gpu.run.main`."""

import sys

from .run import main

if __name__ == "__main__":
    sys.exit(main())
