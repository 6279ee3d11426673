"""Train AlignedReID and evaluate it (the command line is reid_tf/train_cli.py).

    python train.py            # synthetic data, tiny backbone, CPU, a few minutes
    python train.py --help     # every setting
"""

import sys

from reid_tf.train_cli import main

if __name__ == "__main__":
    sys.exit(main())
