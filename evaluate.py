#!/usr/bin/env python
"""Score HDF5 feature dumps with mAP, mINP and CMC: ``python evaluate.py DUMP [DUMP ...]``.

The same program as the ``reid-evaluate`` console script; see ``--help`` and
``docs/evaluate.md``.
"""

import sys

from reference.evaluate_cli import main

if __name__ == "__main__":
    sys.exit(main())
