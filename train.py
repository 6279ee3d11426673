"""Train AlignedReID and evaluate it (the command line is reid_tf/train_cli.py).

Needs Keras and a backend (``pip install -e ".[tf]"``, ``[jax]`` or ``[torch]``);
without them it says which extra to install and exits with status 2.

    python train.py            # synthetic data, tiny backbone, CPU, a few minutes
    python train.py --help     # every setting
"""

import sys

from reid_tf.launch import train

if __name__ == "__main__":
    sys.exit(train())
