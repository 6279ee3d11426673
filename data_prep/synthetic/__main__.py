"""``python -m data_prep.synthetic DST [options]`` runs :func:`data_prep.synthetic.cli.main`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
