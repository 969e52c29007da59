"""``python -m ctx_spark COMMAND ...``: the ``ctx-spark`` command without the console script."""

import sys

from ctx_spark.cli import main

sys.exit(main())
