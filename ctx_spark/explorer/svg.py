"""Inline SVG charts (bars, diverging bars, stacked shares, distribution boxes, lines).

Why not matplotlib for these: a dozen small figures cost seconds of drawing and PNG
encoding on a busy two-core machine, while the same bars as SVG are a few kilobytes of
text written in milliseconds, sharp at any zoom, with selectable text. matplotlib stays
for the two dense figures that need it (a co-occurrence heatmap and ROC curves, drawn only
when the stage's own PNG is missing; charts.py).

Every chart is ``<svg role="img" aria-labelledby=...>`` with a ``<title>`` and a
``<desc>``; the numbers are also in a table beside it. Labels are escaped like all text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Optional

from ctx_spark.explorer.html import Raw, esc

COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
WIDTH = 720
FONT = 12
ROW = 20


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high]."""
    if not math.isfinite(low) or not math.isfinite(high) or high <= low:
        high = low + 1.0
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [math.floor(low / step) * step]
    while ticks[-1] < high - step * 1e-9:
        ticks.append(ticks[-1] + step)
    return [round(t, 10) for t in ticks]


def _fmt(value: float) -> str:
    if abs(value) >= 1000 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.3g}"


class _Canvas:
    def __init__(self, uid: str, title: str, desc: str, left: int, height: int) -> None:
        self.uid, self.title, self.desc, self.left, self.height = uid, title, desc, left, height
        self.parts: list[str] = []

    def text(
        self,
        x: float,
        y: float,
        text: str,
        anchor: str = "start",
        size: int = FONT,
        weight: str = "normal",
        colour: str = "#222",
    ) -> None:
        self.parts.append(
            f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
            f'font-weight="{weight}" fill="{colour}">{esc(text)}</text>'
        )

    def rect(self, x: float, y: float, w: float, h: float, colour: str, label: Optional[str] = None) -> None:
        tip = f"<title>{esc(label)}</title>" if label else ""
        self.parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(0.0, w):.1f}" height="{h:.1f}" fill="{colour}">{tip}</rect>'
        )

    def line(
        self,
        x1: float,
        y1: float,
        x2: float,
        y2: float,
        colour: str = "#999",
        width: float = 1,
        dash: Optional[str] = None,
    ) -> None:
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
            f'stroke-width="{width}"{extra}/>'
        )

    def legend(self, names: Sequence[str], y: float) -> None:
        x = self.left
        for i, name in enumerate(names):
            self.rect(x, y - 9, 10, 10, COLOURS[i % len(COLOURS)])
            self.text(x + 14, y, name)
            x += 24 + 7 * len(name)

    def svg(self) -> Raw:
        return Raw(
            f'<figure><svg class="chart" role="img" aria-labelledby="{self.uid}-t {self.uid}-d" '
            f'viewBox="0 0 {WIDTH} {self.height}" width="{WIDTH}" height="{self.height}" '
            f'preserveAspectRatio="xMinYMin meet"><title id="{self.uid}-t">{esc(self.title)}</title>'
            f'<desc id="{self.uid}-d">{esc(self.desc)}</desc>{"".join(self.parts)}</svg>'
            f"<figcaption>{esc(self.title)}</figcaption></figure>"
        )


def _left_margin(labels: Sequence[str]) -> int:
    return int(min(260, 16 + 7 * max([len(str(lab)) for lab in labels] or [4])))


def _axis(c: _Canvas, ticks: Sequence[float], scale, top: float, bottom: float, label: str) -> None:
    for t in ticks:
        x = scale(t)
        c.line(x, top, x, bottom, "#e3e3e3")
        c.text(x, bottom + 14, _fmt(t), "middle", 11, colour="#444")
    c.text((c.left + WIDTH - 20) / 2, bottom + 30, label, "middle", 11, colour="#444")


def hbars(
    uid: str, title: str, desc: str, labels: Sequence[str], series: Mapping[str, Sequence[float]], xlabel: str
) -> Raw:
    """Horizontal grouped bars: one group per label, one bar per series, values at the ends."""
    names = list(series)
    k = max(1, len(names))
    group = ROW * (1 if k == 1 else 0.8 * k + 0.4)
    left, top = _left_margin(labels), 30 if k > 1 else 12
    height = int(top + group * len(labels) + 42)
    values = [[float(v or 0) for v in series[n]] for n in names]
    high = max([v for vs in values for v in vs] or [0]) or 1.0
    ticks = nice_ticks(0, high)
    right = WIDTH - 60
    scale = lambda v: left + (right - left) * v / ticks[-1]  # noqa: E731
    c = _Canvas(uid, title, desc, left, height)
    if k > 1:
        c.legend(names, 16)
    _axis(c, ticks, scale, top, top + group * len(labels), xlabel)
    bar = (group - 4) / k
    for i, label in enumerate(labels):
        y0 = top + i * group + 2
        c.text(left - 6, y0 + group / 2 + 2, str(label), "end")
        for j, name in enumerate(names):
            v = values[j][i] if i < len(values[j]) else 0.0
            y = y0 + j * bar
            c.rect(left, y, scale(v) - left, bar - 1, COLOURS[j % len(COLOURS)], f"{label}, {name}: {_fmt(v)}")
            if v:
                c.text(scale(v) + 3, y + bar / 2 + 3, _fmt(v), size=10)
    c.line(left, top, left, top + group * len(labels), "#333")
    return c.svg()


def diverging(
    uid: str, title: str, desc: str, labels: Sequence[str], gained: Sequence[float], lost: Sequence[float]
) -> Raw:
    """Gains to the right of zero, losses to the left, one row per label."""
    left, top = _left_margin(labels), 30
    height = int(top + ROW * len(labels) + 42)
    high = max([float(v or 0) for v in (*gained, *lost)] or [0]) or 1.0
    ticks = [t for t in nice_ticks(0, high, 3)]
    ticks = [-t for t in reversed(ticks[1:])] + ticks
    middle, half = (left + WIDTH - 40) / 2, (WIDTH - 40 - left) / 2
    scale = lambda v: middle + half * v / (ticks[-1] * 1.15)  # noqa: E731 - room for the end labels
    c = _Canvas(uid, title, desc, left, height)
    c.rect(left, 7, 10, 10, COLOURS[2])
    c.text(left + 14, 16, "gained")
    c.rect(left + 80, 7, 10, 10, COLOURS[5])
    c.text(left + 94, 16, "lost")
    _axis(c, ticks, scale, top, top + ROW * len(labels), "tracks")
    for i, label in enumerate(labels):
        y = top + i * ROW + 3
        g, lo = float(gained[i] or 0), float(lost[i] or 0)
        c.text(left - 6, y + ROW / 2 + 1, str(label), "end")
        c.rect(middle, y, scale(g) - middle, ROW - 6, COLOURS[2], f"{label}: +{_fmt(g)} gained")
        c.rect(scale(-lo), y, middle - scale(-lo), ROW - 6, COLOURS[5], f"{label}: -{_fmt(lo)} lost")
        if g:
            c.text(scale(g) + 3, y + ROW / 2 + 1, f"+{_fmt(g)}", size=10)
        if lo:
            c.text(scale(-lo) - 3, y + ROW / 2 + 1, f"-{_fmt(lo)}", "end", 10)
    c.line(middle, top, middle, top + ROW * len(labels), "#333")
    return c.svg()


def stacked(
    uid: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    shares: Mapping[str, Sequence[float]],
    targets: Sequence[float] = (),
) -> Raw:
    """One bar per label stacked from the series' shares (0 to 1); dashed lines at the
    cumulative ``targets``."""
    names = list(shares)
    left, top = _left_margin(labels), 30
    height = int(top + ROW * len(labels) + 42)
    right = WIDTH - 30
    scale = lambda v: left + (right - left) * v  # noqa: E731
    c = _Canvas(uid, title, desc, left, height)
    c.legend(names, 16)
    _axis(c, [0, 0.25, 0.5, 0.75, 1.0], scale, top, top + ROW * len(labels), "share of the context's tracks")
    for i, label in enumerate(labels):
        y, x = top + i * ROW + 3, 0.0
        c.text(left - 6, y + ROW / 2 + 1, str(label), "end")
        for j, name in enumerate(names):
            v = float(shares[name][i] or 0)
            c.rect(
                scale(x), y, scale(x + v) - scale(x), ROW - 6, COLOURS[j % len(COLOURS)], f"{label}, {name}: {v:.3f}"
            )
            x += v
    total = 0.0
    for t in list(targets)[:-1]:
        total += float(t or 0)
        c.line(scale(total), top - 4, scale(total), top + ROW * len(labels), "#222", 1.2, "4 3")
    return c.svg()


def boxes(uid: str, title: str, desc: str, entries: Sequence[tuple[str, Mapping[str, float]]]) -> Raw:
    """Distribution summaries: p25-p75 box, p05-p95 whiskers, median bar, mean dot,
    min and max ticks."""
    labels = [e[0] for e in entries]
    left, top = _left_margin(labels), 12
    height = int(top + ROW * len(entries) + 42)
    values = [v for _, s in entries for k in ("min", "max", "p05", "p95") if (v := s.get(k)) is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    ticks = nice_ticks(min(0.0, low), high if high > low else low + 1)
    right = WIDTH - 30
    scale = lambda v: left + (right - left) * (v - ticks[0]) / (ticks[-1] - ticks[0])  # noqa: E731
    c = _Canvas(uid, title, desc, left, height)
    _axis(c, ticks, scale, top, top + ROW * len(entries), "weight")
    for i, (label, s) in enumerate(entries):
        mid = top + i * ROW + ROW / 2
        c.text(left - 6, mid + 4, label, "end")
        if s.get("p05") is not None and s.get("p95") is not None:
            c.line(scale(s["p05"]), mid, scale(s["p95"]), mid, "#333")
        if s.get("p25") is not None and s.get("p75") is not None:
            c.rect(
                scale(s["p25"]),
                mid - 6,
                scale(s["p75"]) - scale(s["p25"]),
                12,
                COLOURS[4],
                f"{label}: p25 {_fmt(s['p25'])}, p75 {_fmt(s['p75'])}",
            )
        if s.get("p50") is not None:
            c.line(scale(s["p50"]), mid - 7, scale(s["p50"]), mid + 7, "#000", 2.5)
        for key in ("min", "max"):
            if s.get(key) is not None:
                c.line(scale(s[key]), mid - 4, scale(s[key]), mid + 4, "#555", 1.5)
        if s.get("mean") is not None:
            c.parts.append(
                f'<circle cx="{scale(s["mean"]):.1f}" cy="{mid:.1f}" r="3.5" fill="{COLOURS[5]}">'
                f"<title>{esc(label)}: mean {_fmt(s['mean'])}</title></circle>"
            )
    return c.svg()


def lines(
    uid: str, title: str, desc: str, x: Sequence[float], series: Mapping[str, Sequence[Optional[float]]], xlabel: str
) -> Raw:
    """One polyline with dots per series over ``x`` (a missing value breaks the line)."""
    names = list(series)
    left, top, bottom = 60, 30, 230
    c = _Canvas(uid, title, desc, left, bottom + 42)
    c.legend(names, 16)
    ys = [v for n in names for v in series[n] if v is not None and math.isfinite(v)]
    low, high = (min(ys), max(ys)) if ys else (0.0, 1.0)
    yt = nice_ticks(low, high if high > low else low + 1, 4)
    xt = nice_ticks(min(x or [0]), max(x or [1]) if x and max(x) > min(x) else (min(x or [0]) + 1), 6)
    right = WIDTH - 20
    sx = lambda v: left + (right - left) * (v - xt[0]) / (xt[-1] - xt[0])  # noqa: E731
    sy = lambda v: bottom - (bottom - top) * (v - yt[0]) / (yt[-1] - yt[0])  # noqa: E731
    _axis(c, xt, sx, top, bottom, xlabel)
    for t in yt:
        c.line(left, sy(t), right, sy(t), "#eee")
        c.text(left - 6, sy(t) + 4, _fmt(t), "end", 11, colour="#444")
    for j, name in enumerate(names):
        colour = COLOURS[j % len(COLOURS)]
        run: list[str] = []
        for xv, yv in zip(x, series[name]):
            if yv is None or not math.isfinite(yv):
                if len(run) > 1:
                    c.parts.append(
                        f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(run)}"/>'
                    )
                run = []
                continue
            run.append(f"{sx(xv):.1f},{sy(yv):.1f}")
            c.parts.append(
                f'<circle cx="{sx(xv):.1f}" cy="{sy(yv):.1f}" r="3" fill="{colour}">'
                f"<title>{esc(name)}, {esc(xlabel)} {_fmt(xv)}: {yv:.4g}</title></circle>"
            )
        if len(run) > 1:
            c.parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(run)}"/>')
    return c.svg()


def _blue(fraction: float) -> str:
    """White to dark blue."""
    f = min(1.0, max(0.0, fraction))
    low, high = (247, 251, 255), (8, 48, 107)
    return "#" + "".join(f"{round(a + (b - a) * f):02x}" for a, b in zip(low, high))


def heatmap(uid: str, title: str, desc: str, labels: Sequence[str], matrix: Sequence[Sequence[float]]) -> Raw:
    """An annotated square matrix (rows and columns in ``labels`` order), darker = more."""
    n = len(labels)
    left = _left_margin(labels)
    cell = max(14.0, min(36.0, (WIDTH - left - 10) / max(1, n)))
    top = 16 + 7 * max([len(str(lab)) for lab in labels] or [4])
    height = int(top + cell * n + 10)
    c = _Canvas(uid, title, desc, left, height)
    high = max([float(v) for row in matrix for v in row] or [0]) or 1.0
    for j, label in enumerate(labels):
        x = left + j * cell + cell / 2 + 4
        c.parts.append(
            f'<text transform="translate({x:.1f},{top - 6:.1f}) rotate(-90)" font-size="{FONT}" '
            f'fill="#222">{esc(label)}</text>'
        )
    for i, label in enumerate(labels):
        y = top + i * cell
        c.text(left - 6, y + cell / 2 + 4, str(label), "end")
        for j, other in enumerate(labels):
            v = float(matrix[i][j])
            c.rect(left + j * cell, y, cell - 1, cell - 1, _blue(v / high), f"{label} and {other}: {_fmt(v)}")
            if v and cell >= 18:
                c.text(
                    left + j * cell + cell / 2,
                    y + cell / 2 + 3,
                    _fmt(v),
                    "middle",
                    9,
                    colour="#fff" if v > high / 2 else "#222",
                )
    return c.svg()
