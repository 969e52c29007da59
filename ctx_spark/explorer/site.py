"""Build the static site: ``build_site(source, out)`` and the command line ``main(argv)``.

The site is a directory of plain HTML files with their PNG charts under ``assets/``; open
``index.html`` from disk. It is written under a hidden sibling (``._staging-<name>-<id>``,
the prefix the refresh already cleans after a crash) and renamed into place, so a reader
never sees half a site, and a site written into a snapshot is replaced whole.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import urllib.parse
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional

from ctx_spark.errors import CtxSparkError
from ctx_spark.explorer import html as H
from ctx_spark.explorer.html import context_file
from ctx_spark.explorer.sources import PARTS, ExplorerError, Sources, resolve

STAGING_PREFIX = "._staging-"
RETIRED_PREFIX = "._retired-"
#: (file, title) of the fixed pages, in navigation order.
PAGES = (
    ("index.html", "Overview"),
    ("labelling.html", "Labelling"),
    ("dataset.html", "Dataset"),
    ("extraction.html", "Extraction"),
    ("model.html", "Model"),
)


class Site:
    """The site being written: where pages and charts go, and what every page shares."""

    def __init__(self, src: Sources, staging: Path, final: Path, top_n: int, errors_limit: int) -> None:
        self.src, self.dir, self.final = src, staging, final
        self.assets = staging / "assets"
        self.top_n, self.errors_limit = top_n, errors_limit
        self.run_id = (src.manifest or {}).get("run_id") or (src.snapshot.name if src.snapshot else None)
        self.title = "ctx-spark explorer" + (f": snapshot {self.run_id}" if self.run_id else "")
        self.generated = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        self._charts = 0

    def nav(self, current: str) -> H.Raw:
        def item(file: str, label: str) -> str:
            return f"<li>{H.tag('a', label, href=file, aria_current='page' if file == current else None)}</li>"

        pages = "".join(item(f, t) for f, t in PAGES)
        contexts = "".join(item(context_file(c), c) for c in self.src.contexts)
        out = f'<nav aria-label="Pages"><ul>{pages}</ul></nav>'
        if contexts:
            out += f'<nav class="contexts" aria-label="Contexts"><ul><li>Contexts:</li>{contexts}</ul></nav>'
        return H.Raw(out)

    def write(self, file: str, title: str, body: H.Raw, script: Optional[str] = None) -> None:
        footer = (
            f"Generated {self.generated} by ctx-spark explorer from "
            f"{self.src.snapshot or 'separate stage outputs'}. Static files: no server, no network."
        )
        text = H.page(title, body, nav=self.nav(file), site_title=self.title, footer=footer, script=script)
        (self.dir / file).write_text(text, encoding="utf-8")

    def chart(self, draw: Callable, stem: str, alt: str, caption: str, *args, **kwargs) -> H.Raw:
        """Draw a chart into assets/ and return its figure; a chart that cannot be drawn
        becomes a notice (the same data is always in a table beside it)."""
        self._charts += 1
        name = f"{self._charts:02d}-{stem}.png"
        try:
            made = draw(self.assets, name, *args, **kwargs)
        except Exception as exc:  # a chart must never take the site down
            return H.notice(f"chart {caption!r} could not be drawn: {type(exc).__name__}: {exc}", "error")
        return H.figure(f"assets/{made.name}", alt, caption, made.width, made.height)

    def svg(self, draw: Callable, title: str, desc: str, *args) -> H.Raw:
        """An inline SVG chart (svg.py) with a page-unique id for its title and description."""
        self._charts += 1
        try:
            return draw(f"chart{self._charts}", title, desc, *args)
        except Exception as exc:  # a chart must never take the site down
            return H.notice(f"chart {title!r} could not be drawn: {type(exc).__name__}: {exc}", "error")

    def copy_image(self, path: Path, stem: str, alt: str, caption: str) -> Optional[H.Raw]:
        """Copy a PNG a stage wrote (co-occurrences, ROC curves) into assets/."""
        if not path.is_file():
            return None
        self.assets.mkdir(parents=True, exist_ok=True)
        name = f"{stem}.png"
        shutil.copyfile(path, self.assets / name)
        size = _png_size(self.assets / name)
        if size is None:
            return H.notice(f"{path} is not a PNG image", "error")
        return H.figure(f"assets/{name}", alt, caption, *size)

    def href(self, target: Path) -> str:
        """A relative URL from the site's final directory to a local file (never copied:
        audio stays where the catalogue keeps it)."""
        try:
            relative = os.path.relpath(os.path.abspath(target), os.path.abspath(self.final))
        except ValueError:  # another drive (Windows): an absolute file: URL instead
            return Path(os.path.abspath(target)).as_uri()
        return urllib.parse.quote(relative.replace(os.sep, "/"), safe="/")


def _png_size(path: Path) -> Optional[tuple[int, int]]:
    with open(path, "rb") as handle:
        head = handle.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def build_site(
    source: Optional[os.PathLike | str],
    out: os.PathLike | str,
    *,
    top_n: int = 100,
    errors_limit: int = 200,
    audio_dir: Optional[os.PathLike | str] = None,
    **parts: Optional[os.PathLike | str],
) -> Path:
    """Write the explorer site for a snapshot or separate stage outputs; returns
    ``out/index.html``.

    Args:
        source: a refresh root ``R`` (``R/current`` is followed), a snapshot directory, or
            None when only separate outputs are given.
        out: the site's directory (replaced whole, atomically, when it exists).
        top_n: tracks listed per context page.
        errors_limit: failed files listed on the extraction page (the total is always shown).
        audio_dir: the catalogue's audio directory (default: the snapshot manifest's).
        **parts: separate outputs: ``labels``, ``dataset``, ``mels``, ``scores``, ``run``,
            ``evaluation``, ``comparison``, ``keywords`` (each overrides the snapshot's).

    Raises:
        ExplorerError: the source is not a snapshot and no part was given, or bad limits.
    """
    from ctx_spark.explorer import contexts, model, overview, stages

    if top_n < 1 or errors_limit < 0:
        raise ExplorerError(f"top_n must be >= 1 and errors_limit >= 0 (got {top_n}, {errors_limit})")
    src = resolve(
        Path(source) if source is not None else None,
        given={k: (Path(v) if v is not None else None) for k, v in parts.items()},
        audio_dir=Path(audio_dir) if audio_dir is not None else None,
    )
    final = Path(os.path.abspath(out))
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f"{STAGING_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        site = Site(src, staging, final, top_n, errors_limit)
        writers = (
            overview.write_overview,
            overview.write_labelling,
            stages.write_dataset,
            stages.write_extraction,
            model.write_model,
        )
        for (file, title), write in zip(PAGES, writers):
            _guarded(site, write, [(file, title)])
        _guarded(site, contexts.write_contexts, [(context_file(c), f"Context: {c}") for c in src.contexts])
        _publish(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final / "index.html"


def _guarded(site: Site, write: Callable[[Site], None], pages: list[tuple[str, str]]) -> None:
    """Write pages; an input the pages did not expect (a report of another shape) gives
    those pages an error notice instead of no site at all."""
    try:
        write(site)
    except Exception as exc:  # the last line of defence: the other pages are still written
        for file, title in pages:
            site.write(
                file,
                title,
                H.notice(f"this page could not be built from its inputs: {type(exc).__name__}: {exc}", "error"),
            )


def _publish(staging: Path, final: Path) -> None:
    if final.exists():
        retired = final.parent / f"{RETIRED_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}"
        os.replace(final, retired)
        os.replace(staging, final)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, final)


DESCRIPTION = """Write a static HTML site for a refresh snapshot or for separate stage outputs: overview
(inputs, fingerprints, rows and seconds per stage, changes since the previous snapshot),
labelling, dataset, extraction, model, and one page per context with its top tracks and
audio players. Open SITE/index.html from disk: no server, no network.

inputs:   --snapshot R (R/current, or a snapshot directory), or separate stage outputs
          (--labels, --dataset, --mels, --scores, --run, --evaluation, --comparison)
outputs:  SITE/index.html and one page per stage and per context (replaced atomically)
setting:  --top (tracks per context page)

example:
  ctx-spark report --snapshot R --out SITE
  ctx-spark report --labels L --dataset D --mels S --scores P --run RUN --out SITE"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``ctx-spark report`` (also used by :func:`main`)."""
    p.add_argument("--snapshot", metavar="R", help="refresh root (follows R/current) or a snapshot directory")
    p.add_argument("--out", metavar="SITE", required=True, help="site directory (replaced atomically)")
    for name, metavar, what in (
        ("labels", "L", "labelling output (--out of label_tracks)"),
        ("dataset", "D", "dataset output"),
        ("mels", "S", "mel extraction output"),
        ("scores", "P", "scoring output"),
        ("run", "RUN", "training run directory"),
        ("evaluation", "E", "evaluation output (Table 1)"),
        ("comparison", "C", "comparison output (Table 2)"),
        ("keywords", "K", "keyword ranking output"),
    ):
        p.add_argument(f"--{name}", metavar=metavar, help=f"{what}; overrides the snapshot's")
    p.add_argument("--audio-dir", metavar="DIR", help="catalogue audio directory (<track_id>.<ext>) for the players")
    p.add_argument("--top", type=int, default=100, metavar="N", help="tracks per context page (default 100)")
    p.add_argument(
        "--errors-limit",
        type=int,
        default=200,
        metavar="N",
        help="failed files listed on the extraction page (default 200)",
    )


def run(args: argparse.Namespace) -> int:
    """Build the site from parsed options; prints the index page's path. Bad input: one
    ``error:`` line on stderr and exit code 2."""
    parts = {name: getattr(args, name) for name in PARTS}
    try:
        index = build_site(
            args.snapshot, args.out, top_n=args.top, errors_limit=args.errors_limit, audio_dir=args.audio_dir, **parts
        )
    except CtxSparkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(index)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``ctx-spark report`` with ``argv`` (default: the command line)."""
    from ctx_spark.cli import main as ctx_spark_main

    return ctx_spark_main(["report", *(sys.argv[1:] if argv is None else argv)])
