"""``python -m data_prep NAME ...`` runs :func:`data_prep.cli.main`."""

import sys

from .cli import main

sys.exit(main())
