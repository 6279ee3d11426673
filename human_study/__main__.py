import sys

from human_study.cli import main

sys.exit(main())
