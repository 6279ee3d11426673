"""``python -m reid_tf.gradcheck``: run :func:`reid_tf.gradcheck.main`."""

import sys

from reid_tf.gradcheck.cli import main

sys.exit(main())
