"""One page per context: "pick a context, get tracks".

With scores, a page lists the context's top N tracks by probability, read as ``rank <= N``
from its ``context_rankings/context=<name>/`` partition; without scores (no model), the
context's labelled tracks with the most playlists, from ``track_context_counts``. Either way
the few tracks shown are then looked up by id for their current labels, split, names and
audio file, so the cost depends on N and not on the catalogue.

A track whose audio is a local file gets an ``<audio controls>`` player with a relative
link to that file (audio is never copied). The search box is the site's only script and
the page works without it (the box is hidden until the script shows it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Optional

from ctx_spark.explorer import html as H
from ctx_spark.explorer.readers import (
    NAME_COLUMNS,
    audio_paths,
    dataset,
    labelled_top,
    lookup,
    ranking_partitions,
    top_ranked,
)
from ctx_spark.explorer.sources import Sources

NAME_TITLES = {"track_name": "title", "artist_name": "artist", "album_name": "album"}


def _track_rows_table(caption: str, header: Sequence[str], rows: Sequence[tuple[dict, Sequence[Any]]]) -> H.Raw:
    """A table whose rows carry ``data-*`` attributes for the search (the first cell is
    the row header)."""
    head = "".join(f'<th scope="col">{H.esc(h)}</th>' for h in header)
    body = []
    for data, cells in rows:
        out = []
        for i, cell in enumerate(cells):
            cell = cell if isinstance(cell, H.Cell) else H.Cell(cell)
            klass = H.attrs(class_=cell.class_)
            out.append(
                f'<th scope="row"{klass}>{H.esc(cell.content)}</th>'
                if i == 0
                else f"<td{klass}>{H.esc(cell.content)}</td>"
            )
        body.append(f"<tr{H.attrs(**data)}>{''.join(out)}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(header)}">(no tracks)</td></tr>')
    return H.Raw(
        f'<div class="scroll"><table class="tracks"><caption>{H.esc(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _labels_cell(current: str, labels: Optional[list]) -> H.Raw:
    if labels is None:
        return H.Raw("n/a")
    if not labels:
        return H.Raw("none")
    return H.join(
        H.join([", " if i else "", H.tag("span", name, class_="lab") if name == current else name])
        for i, name in enumerate(labels)
    )


def _audio_cell(site, path) -> H.Raw:
    if path is None:
        return H.Raw("no local file")
    url = site.href(path)
    return H.Raw(
        f'<audio controls preload="metadata"{H.attrs(src=url)}>{H.tag("a", "audio file", href=url)}</audio>'
        f" {H.tag('a', 'file', href=url, title=str(path))}"
    )


def _search_form() -> H.Raw:
    return H.Raw(
        '<form id="search" class="search" role="search" hidden>'
        '<label for="q">Find a track on this page</label>'
        '<input id="q" type="search" inputmode="search" autocomplete="off" placeholder="track id or name">'
        '<button type="submit">Find</button>'
        '<output id="search-status" aria-live="polite"></output></form>'
    )


def _facts_for(src: Sources, ids: list) -> dict[Any, dict]:
    """Current labels (and names, when the labels carry them) of the tracks shown."""
    if not src["labels"].present or not ids:
        return {}
    assert src["labels"].path is not None  # present
    return lookup(src["labels"].path / "track_labels", ids, ["contexts", *NAME_COLUMNS])


def _names_from_scores(src: Sources, ids: list, have: set[str]) -> dict[Any, dict]:
    if not src["scores"].present or not ids:
        return {}
    assert src["scores"].path is not None  # present
    scores = dataset(src["scores"].path / "track_scores")
    missing = [c for c in NAME_COLUMNS if c not in have and scores is not None and c in scores.schema.names]
    return lookup(src["scores"].path / "track_scores", ids, missing) if missing else {}


def _attempt(what: str, read: Callable[[], Any], notes: list[str], default: Any) -> Any:
    """A look-up that must not take the pages down: a damaged table becomes a note."""
    try:
        return read()
    except Exception as exc:  # any reader error (ArrowInvalid, OSError, ...) is reported on the pages
        notes.append(f"{what} could not be read: {type(exc).__name__}: {exc}")
        return default


def _select(site, notes: list[str]) -> tuple[dict[str, list[dict]], dict[str, str], bool]:
    """(rows per context, why a context has none, whether they are scores)."""
    src: Sources = site.src
    shown: dict[str, list[dict]] = {}
    problems: dict[str, str] = {}
    if src["scores"].present:
        assert src["scores"].path is not None  # present
        partitions = ranking_partitions(src["scores"].path / "context_rankings")
        for name in src.contexts:
            if name not in partitions:
                problems[name] = f"no context_rankings/context={name} partition in {src['scores'].path}"
                continue
            part = partitions[name]
            table = _attempt(str(part), partial(top_ranked, part, site.top_n), [], None)
            if table is None:
                problems[name] = f"{partitions[name]} holds no readable ranking"
            else:
                shown[name] = table.to_pylist()
        return shown, problems, True
    if src["labels"].present:
        assert src["labels"].path is not None  # present
        counts = src["labels"].path / "track_context_counts"
        min_playlists = int(((src.report("labels") or {}).get("settings") or {}).get("min_playlists") or 1)
        shown = _attempt(str(counts), lambda: labelled_top(counts, src.contexts, min_playlists, site.top_n), notes, {})
        problems = {name: f"{counts} could not be read" for name in src.contexts if name not in shown}
    return shown, problems, False


def write_contexts(site) -> None:
    """Write ``context-<name>.html`` for every configured context."""
    src: Sources = site.src
    notes: list[str] = []
    shown, problems, scored = _select(site, notes)
    ids = sorted({row["track_id"] for rows in shown.values() for row in rows}, key=lambda v: (str(type(v)), v))
    facts = _attempt("track_labels", lambda: _facts_for(src, ids), notes, {})
    have = {c for rows in shown.values() for row in rows[:1] for c in row}
    have |= {c for row in facts.values() for c in row if row.get(c) is not None}
    extra = _attempt("track_scores", lambda: _names_from_scores(src, ids, have), notes, {})
    splits = {}
    if not scored and src["dataset"].present:
        assert src["dataset"].path is not None  # present
        split_table = src["dataset"].path / "dataset"
        splits = _attempt("dataset", lambda: lookup(split_table, ids, ["split"]), notes, {})
    mels = src["mels"].path if src["mels"].present else None
    audio = _attempt("the audio paths", lambda: audio_paths(mels, src.audio_dir, ids), notes, {})
    for name in src.contexts:
        rows = shown.get(name)
        body = _page_body(site, name, rows, problems.get(name), scored, facts, extra, splits, audio)
        if notes:
            body = H.join([*(H.notice(n, "error") for n in notes), body])
        site.write(H.context_file(name), f"Context: {name}", body, script=H.SEARCH_SCRIPT if rows else None)


def _name_values(row: dict, fact: dict, extra: dict) -> dict[str, Any]:
    return {c: row.get(c) or fact.get(c) or extra.get(c) for c in NAME_COLUMNS}


def _page_body(
    site,
    name: str,
    rows: Optional[list[dict]],
    problem: Optional[str],
    scored: bool,
    facts: dict,
    extra: dict,
    splits: dict,
    audio: dict,
) -> H.Raw:
    src: Sources = site.src
    labels_report = src.report("labels") or {}
    labelled = (labels_report.get("tracks_labelled_per_context") or {}).get(name)
    matched = (labels_report.get("playlists_matched_per_context") or {}).get(name)
    scores_report = src.report("scores") or {}
    listed = len(rows or [])
    if scored:
        what = (
            f"The {listed:,} tracks with the highest probability of {name} (at most {site.top_n:,} are listed) "
            f"among {H.number(scores_report.get('rows_scored'))} scored tracks; ties by track id."
        )
    else:
        what = (
            f"No scores in this snapshot (no model): the {listed:,} tracks labelled {name} with the most "
            f"playlists (at most {site.top_n:,} are listed)."
        )
    parts: list[Any] = [
        H.tag("p", what, class_="lead"),
        H.tag(
            "p",
            f"In this snapshot's labels, {H.plural(labelled, 'track')} carry {name}, from "
            f"{H.plural(matched, 'matching playlist')}.",
        ),
    ]
    if not scored:
        parts.append(H.notice(f"scores: {src['scores'].problem}"))
    if rows is None:
        parts.append(H.notice(problem or "no tracks to list", "error" if problem else "absent"))
        return H.join(parts)
    all_rows = [(_name_values(r, facts.get(r["track_id"], {}), extra.get(r["track_id"], {})), r) for r in rows]
    name_columns = [c for c in NAME_COLUMNS if any(v[c] for v, _ in all_rows)]
    header = (["rank"] if scored else ["#"]) + ["track"] + [NAME_TITLES[c] for c in name_columns]
    header += ["probability"] if scored else ["playlists"]
    header += [f"labelled {name}", "current labels", "split", "audio"]
    table_rows = []
    for pos, (names, r) in enumerate(all_rows, start=1):
        track = r["track_id"]
        fact = facts.get(track)
        labels = list(fact["contexts"]) if fact and fact.get("contexts") is not None else None
        split = r.get("split") if scored else (splits.get(track) or {}).get("split")
        value = H.num(r.get("probability"), 4) if scored else H.num(r.get("n_playlists"))
        cells = [
            H.num(r.get("rank") if scored else pos),
            track,
            *[names[c] or "" for c in name_columns],
            value,
            "n/a" if labels is None else ("yes" if name in labels else "no"),
            _labels_cell(name, labels),
            split or "",
            H.Cell(_audio_cell(site, audio.get(track)), "audio"),
        ]
        data = {
            "data_track": str(track),
            "data_pos": str(pos),
            "data_text": " ".join(str(names[c]) for c in name_columns if names[c]) or None,
        }
        table_rows.append((data, cells))
    in_top = sum(1 for _, cells in table_rows if cells[len(header) - 4] == "yes")
    parts.append(H.tag("p", f"{in_top:,} of the {H.plural(len(rows), 'track')} listed carry the label {name} now."))
    parts.append(_search_form())
    caption = (
        f"Top {len(rows):,} tracks for {name} by probability"
        if scored
        else f"Tracks labelled {name}, by playlist count"
    )
    parts.append(_track_rows_table(caption, header, table_rows))
    return H.join(parts)
