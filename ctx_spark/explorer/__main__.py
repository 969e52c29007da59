"""``python -m ctx_spark.explorer --snapshot R --out SITE`` (what ``ctx-spark report`` runs)."""

import sys

from ctx_spark.explorer.site import main

if __name__ == "__main__":
    sys.exit(main())
