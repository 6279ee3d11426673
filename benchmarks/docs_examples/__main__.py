"""``python -m benchmarks.docs_examples``: see :mod:`benchmarks.docs_examples.cli`."""

import sys

from benchmarks.docs_examples.cli import main

sys.exit(main())
