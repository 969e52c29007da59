"""HTML building blocks: escaping by default, accessible tables, the page skeleton.

Every value that reaches a page goes through :func:`esc` unless it is wrapped in
:class:`Raw`; playlist titles, track names, file names and decoder messages come from
outside the project, so a ``<script>`` in any of them must show as text. Only markup this
package builds itself is ``Raw``.

The pages are static files opened from ``file://``: no server, no network, no external
fonts, scripts or styles. The style sheet and the one script (the track search of the
context pages) are inline. A Content-Security-Policy allows exactly that script, by its
SHA-256 hash, and nothing else, so even a value that slipped through unescaped could not
run (a blocked script is logged as a console error, which the browser tests look for).
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Optional


def context_file(name: str) -> str:
    """The page of a context: a file name that is safe whatever the configured name is."""
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else f"~{ord(ch):x}" for ch in name)
    return f"context-{safe or '~'}.html"


class Raw(str):
    """Markup built by this package: inserted as is."""


def esc(value: Any) -> str:
    """The value as HTML text (``None`` as an empty string); :class:`Raw` passes through."""
    if isinstance(value, Raw):
        return value
    if value is None:
        return ""
    return html.escape(str(value), quote=True)


def attrs(**values: Any) -> str:
    """`` name="value"`` pairs (escaped); ``None``/``False`` are left out, ``True`` is a
    bare attribute; a trailing ``_`` is dropped (``class_``) and ``_`` becomes ``-``."""
    out = []
    for name, value in values.items():
        if value is None or value is False:
            continue
        name = name.rstrip("_").replace("_", "-")
        out.append(f" {name}" if value is True else f' {name}="{esc(value)}"')
    return "".join(out)


def tag(name: str, content: Any = "", **values: Any) -> Raw:
    """``<name ...>content</name>`` with ``content`` escaped unless it is :class:`Raw`."""
    return Raw(f"<{name}{attrs(**values)}>{esc(content)}</{name}>")


def join(parts: Iterable[Any]) -> Raw:
    """Concatenate parts, escaping the ones that are not :class:`Raw`."""
    return Raw("".join(esc(p) for p in parts))


def number(value: Any, digits: int = 0) -> str:
    """A count with thousands separators, a float with ``digits`` decimals, ``n/a`` for
    missing or NaN values, anything else as text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if digits else (f"{value:,.0f}" if value.is_integer() else f"{value:,.4g}")
    return str(value)


def plural(count: Any, word: str, many: Optional[str] = None) -> str:
    """``1 track``, ``2 tracks``, ``n/a tracks`` (counts formatted)."""
    return f"{number(count)} {word if count == 1 else (many or word + 's')}"


@dataclass(frozen=True)
class Cell:
    """A table cell with its own class (e.g. numbers right-aligned)."""

    content: Any
    class_: Optional[str] = None


def num(value: Any, digits: int = 0) -> Cell:
    """A right-aligned numeric cell."""
    return Cell(number(value, digits), "num")


def table(
    caption: str,
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    row_headers: bool = True,
    id_: Optional[str] = None,
    class_: Optional[str] = None,
) -> Raw:
    """A semantic table: ``<caption>``, ``<th scope="col">`` headers and, with
    ``row_headers``, the first cell of each row as ``<th scope="row">``. Wrapped in a
    scrolling container so a wide table does not widen a narrow window."""
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in header)
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            cell = value if isinstance(value, Cell) else Cell(value)
            klass = attrs(class_=cell.class_)
            if i == 0 and row_headers:
                cells.append(f'<th scope="row"{klass}>{esc(cell.content)}</th>')
            else:
                cells.append(f"<td{klass}>{esc(cell.content)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(header)}">(no rows)</td></tr>')
    return Raw(
        f'<div class="scroll"{attrs(id=id_)}><table{attrs(class_=class_)}><caption>{esc(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def key_values(caption: str, items: Iterable[tuple[str, Any]]) -> Raw:
    """A two-column table of named values (numbers formatted)."""
    return table(
        caption,
        ["what", "value"],
        [(k, num(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else number(v)) for k, v in items],
    )


def notice(text: Any, kind: str = "absent") -> Raw:
    """A visible box saying that a part is absent or could not be read."""
    return Raw(f'<p class="notice {esc(kind)}" role="note"><strong>{esc(kind.capitalize())}:</strong> {esc(text)}</p>')


def section(title: str, *parts: Any, id_: Optional[str] = None) -> Raw:
    return Raw(f"<section{attrs(id=id_)}><h2>{esc(title)}</h2>{join(parts)}</section>")


def figure(src: str, alt: str, caption: str, width: int, height: int) -> Raw:
    """An image with its alternative text and a visible caption."""
    return Raw(
        f"<figure><img{attrs(src=src, alt=alt, width=width, height=height)}>"
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def cols(*parts: Any) -> Raw:
    """Side by side on a wide window, one under the other on a narrow one."""
    return Raw('<div class="cols">' + "".join(f"<div>{esc(p)}</div>" for p in parts) + "</div>")


def bullet_list(items: Iterable[Any], class_: Optional[str] = None) -> Raw:
    return Raw(f"<ul{attrs(class_=class_)}>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>")


def details(summary: str, *parts: Any) -> Raw:
    """Collapsed detail (works without JavaScript)."""
    return Raw(f"<details><summary>{esc(summary)}</summary>{join(parts)}</details>")


STYLE = """
:root{--fg:#1b1b1b;--muted:#555;--bg:#fff;--accent:#0b5cad;--line:#d0d0d0;--soft:#f3f5f8;--warn:#fff4ce;--bad:#fde7e9}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--accent)}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:4px;z-index:2}
header{background:var(--soft);border-bottom:1px solid var(--line);padding:.5rem 1rem}
header .site{margin:0;font-weight:600}
nav ul{list-style:none;margin:.25rem 0;padding:0;display:flex;flex-wrap:wrap;gap:.25rem .9rem}
nav a[aria-current=page]{font-weight:700;color:var(--fg)}
nav.contexts{font-size:.92rem}
main{padding:0 1rem 2rem;max-width:80rem}
h1{font-size:1.6rem;margin:1rem 0 .5rem}h2{font-size:1.25rem;margin:1.6rem 0 .4rem;border-bottom:1px solid var(--line)}
.scroll{overflow-x:auto;max-width:100%;margin:.5rem 0}
table{border-collapse:collapse;font-size:.92rem}
caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{border:1px solid var(--line);padding:.25rem .5rem;text-align:left;vertical-align:top}
thead th{background:var(--soft)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.msg{max-width:40rem;overflow-wrap:anywhere;font-family:ui-monospace,monospace;font-size:.85rem}
td.path{overflow-wrap:anywhere;font-size:.85rem}
td.audio{white-space:nowrap}
tr.found{outline:3px solid var(--accent);background:#e8f1fb}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid var(--line)}
figcaption{color:var(--muted);font-size:.9rem}
svg.chart{max-width:100%;height:auto;font-family:inherit;border:1px solid var(--line);background:#fff}
.notice{padding:.5rem .75rem;border:1px solid #c9a400;background:var(--warn)}
.notice.error{border-color:#b3261e;background:var(--bad)}
.lead{color:var(--muted)}
ul.parts li{margin:.1rem 0}
audio{width:14rem;max-width:100%;height:2rem}
form.search{margin:.75rem 0;display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}
form.search input{font-size:1rem;padding:.25rem .4rem;min-width:12rem}
.lab{font-weight:700}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(22rem,1fr));gap:0 2rem;align-items:start}
.cols>div{min-width:0}
ul.counts{margin:0;padding-left:1rem;font-size:.88rem}
@media (max-width:40rem){
 .cols{grid-template-columns:1fr}
 body{font-size:15px}main{padding:0 .5rem 1.5rem}header{padding:.4rem .5rem}
 h1{font-size:1.3rem}th,td{padding:.2rem .3rem}audio{width:10rem}
}
"""

#: The track search of the context pages: hidden until this script runs (the page works
#: without it), finds a row by track id (exact) or by a part of a name.
SEARCH_SCRIPT = """
(function(){
var form=document.getElementById('search');if(!form)return;form.hidden=false;
var input=document.getElementById('q'),out=document.getElementById('search-status');
form.addEventListener('submit',function(ev){
 ev.preventDefault();var q=input.value.trim().toLowerCase();
 var rows=document.querySelectorAll('tr[data-track]'),hit=null,i;
 for(i=0;i<rows.length;i++){rows[i].classList.remove('found');}
 if(!q){out.textContent='Type a track id.';return;}
 for(i=0;i<rows.length&&!hit;i++){if(rows[i].getAttribute('data-track').toLowerCase()===q)hit=rows[i];}
 for(i=0;i<rows.length&&!hit;i++){if((rows[i].getAttribute('data-text')||'').toLowerCase().indexOf(q)>=0)hit=rows[i];}
 if(hit){hit.classList.add('found');hit.scrollIntoView({block:'center'});
  out.textContent='Track '+hit.getAttribute('data-track')+' is at position '+hit.getAttribute('data-pos')+' on this page.';}
 else{out.textContent='No track matching \u201c'+input.value.trim()+'\u201d on this page.';}
});
})();
"""


def _script_hash(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


def page(title: str, body: Any, *, nav: Any, site_title: str, footer: Any, script: Optional[str] = None) -> str:
    """A complete HTML document.

    The policy allows local images and media (``file:`` and relative URLs), inline styles,
    and only the given inline script (by hash); no network origin at all.
    """
    script_src = f"'{_script_hash(script)}'" if script else "'none'"
    policy = (
        f"default-src 'none'; img-src 'self' file: data:; media-src 'self' file:; style-src 'unsafe-inline'; "
        f"script-src {script_src}; base-uri 'none'; form-action 'none'"
    )
    tail = f"<script>{script}</script>" if script else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(policy)}">\n'
        f"<title>{esc(title)} - {esc(site_title)}</title>\n"
        '<link rel="icon" href="data:,">\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n"
        '<a class="skip" href="#main">Skip to content</a>\n'
        f'<header><p class="site">{esc(site_title)}</p>{esc(nav)}</header>\n'
        f'<main id="main">\n<h1>{esc(title)}</h1>\n{esc(body)}\n</main>\n'
        f'<footer><p class="lead">{esc(footer)}</p></footer>\n{tail}\n</body>\n</html>\n'
    )
