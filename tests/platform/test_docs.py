"""Every reference from code, conf and docs to a README or docs section resolves to a real
heading, and every relative link in the docs points at a file (and heading) that exists."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT

DOC_FILES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "bench" / "RESULTS.md",
    ROOT / "docker" / "README.md",
]
SOURCE_GLOBS = (
    "ctx_spark/**/*.py",
    "training/**/*.py",
    "jobs/*.py",
    "bench/*.py",
    "scripts/*",
    "tests/**/*.py",
    "conf/**/*.yaml",
    "docker/*",
    "examples/*.py",
    "setup.cfg",
    "*.md",
    "docs/*.md",
)
#: ``README, "Title"``, ``docs/x.md, "Title"``, ``README's "Title"`` (across comment lines too).
CITATION = re.compile(r"(README(?:\.md)?|docs/[\w-]+\.md)(?:'s)?,?\s+\"([^\"]+)\"")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def headings(path: Path) -> list[str]:
    """The headings of a Markdown file (outside code blocks)."""
    found, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)):
            found.append(match.group(1))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _plain_text(path: Path) -> str:
    """The file with comment markers and line breaks folded, so a citation split over two
    comment lines reads as one."""
    lines = [re.sub(r"^\s*(#+|//|\*)?\s?", "", line) for line in path.read_text(encoding="utf-8").splitlines()]
    return " ".join(lines)


def _sources() -> list[Path]:
    files = {p for pattern in SOURCE_GLOBS for p in ROOT.glob(pattern) if p.is_file() and ".venv" not in p.parts}
    return sorted(files - {Path(__file__).resolve()})


def test_every_cited_section_exists() -> None:
    titles = {path.relative_to(ROOT).as_posix(): set(headings(path)) for path in DOC_FILES if path.exists()}
    titles["README"] = titles["README.md"]
    missing = []
    for path in _sources():
        if path.suffix in (".png", ".parquet", ".ogg", ".mp3"):
            continue
        try:
            text = _plain_text(path)
        except UnicodeDecodeError:
            continue
        for document, title in CITATION.findall(text):
            target = "README" if document.startswith("README") else document
            if target not in titles or title not in titles[target]:
                missing.append(f'{path.relative_to(ROOT)}: {document}, "{title}"')
    assert missing == []


def test_every_relative_link_in_the_docs_resolves() -> None:
    broken = []
    for path in DOC_FILES:
        if not path.exists():
            continue
        for target in LINK.findall(path.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue  # http:, https:, mailto:, file:
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                broken.append(f"{path.relative_to(ROOT)} -> {target}")
            elif anchor and linked.suffix == ".md" and anchor not in {slug(h) for h in headings(linked)}:
                broken.append(f"{path.relative_to(ROOT)} -> {target} (no such heading)")
    assert broken == []
