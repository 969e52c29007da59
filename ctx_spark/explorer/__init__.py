"""Context explorer: a static HTML site for a refresh snapshot or separate stage outputs.

    from ctx_spark.explorer import build_site
    build_site("R", "site")                      # R/current's snapshot -> site/index.html
    python -m ctx_spark.explorer --snapshot R --out site

Pages: overview (inputs, fingerprints, rows and seconds per stage, changes since the
previous snapshot), labelling, dataset, extraction, model, and one page per context with
its top tracks and audio players. The site opens from ``file://`` with no server and no
network; it reads only reports, the rankings' top N and small look-ups (no Spark), so it
builds in seconds for a million-track snapshot.
"""

from ctx_spark.explorer.site import build_site, main
from ctx_spark.explorer.sources import ExplorerError

__all__ = ["ExplorerError", "build_site", "main"]
