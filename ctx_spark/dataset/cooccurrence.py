"""Context co-occurrences (the paper's Figure 1): counts and P(c2 | c1), as CSV and PNG.

Computed from the dataset's label-pattern counts (at most 2^m rows), never from tracks.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from ctx_spark.dataset import patterns as P

CSV_HEADER = "context,co_context,tracks,p_co_given_context"


def matrices(dense: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(counts, conditional): counts[a, b] = tracks carrying a and b (diagonal: tracks
    carrying a); conditional[a, b] = P(b | a) = counts[a, b] / counts[a, a] (0 when no
    track carries a). Both (m, m)."""
    counts = P.cooccurrence(dense, m)
    diagonal = np.diag(counts).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        conditional = np.where(diagonal[:, None] > 0, counts / np.where(diagonal > 0, diagonal, 1.0)[:, None], 0.0)
    return counts, conditional


def to_csv(counts: np.ndarray, conditional: np.ndarray, names: Sequence[str]) -> str:
    """Tidy CSV, one row per ordered pair (m^2 rows, ``context`` major, config order):
    ``context,co_context,tracks,p_co_given_context`` where ``tracks`` counts tracks
    carrying both and ``p_co_given_context`` = P(co_context | context)."""
    lines = [CSV_HEADER]
    for a, first in enumerate(names):
        for b, second in enumerate(names):
            lines.append(f"{first},{second},{int(counts[a, b])},{conditional[a, b]:.6f}")
    return "\n".join(lines) + "\n"


def heatmap_png(counts: np.ndarray, conditional: np.ndarray, names: Sequence[str], title: str = "") -> bytes:
    """Two annotated heatmaps side by side (counts; P(column | row)), as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    m = len(names)
    figure = Figure(figsize=(2 * (0.55 * m + 2.5), 0.55 * m + 2.0), dpi=110)
    axes = figure.subplots(1, 2)
    panels = (
        (counts, "tracks with both contexts", "{:d}", "Blues"),
        (conditional, "P(column | row)", "{:.2f}", "Greens"),
    )
    for ax, (matrix, label, fmt, cmap) in zip(axes, panels):
        image = ax.imshow(matrix, cmap=cmap)
        ax.set_xticks(range(m), labels=list(names), rotation=90, fontsize=8)
        ax.set_yticks(range(m), labels=list(names), fontsize=8)
        ax.set_title(label, fontsize=10)
        high = float(matrix.max()) if matrix.size else 0.0
        for a in range(m):
            for b in range(m):
                value = matrix[a, b]
                text = fmt.format(int(value)) if fmt == "{:d}" else fmt.format(float(value))
                ax.text(
                    b,
                    a,
                    text,
                    ha="center",
                    va="center",
                    fontsize=5 if fmt == "{:d}" else 6,
                    color="white" if high and value > 0.6 * high else "black",
                )
        figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
