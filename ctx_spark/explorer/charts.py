"""The one figure drawn with matplotlib (Agg) as PNG: ROC curves, only when the
evaluation's own ``roc_curves.png`` is missing and its ``predictions.parquet`` is there
(every other chart is inline SVG, svg.py).

Figures are built with ``matplotlib.figure.Figure`` directly, not ``pyplot``: no global
state, no GUI backend is ever selected (the builder may run inside a scheduler or a Spark
driver), and nothing is left open after a failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctx_spark.platform import trapezoid

DPI = 100


@dataclass(frozen=True)
class Chart:
    """A written chart: its file name under the assets directory and its pixel size."""

    name: str
    width: int
    height: int


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI)


def _save(fig, directory: Path, name: str) -> Chart:
    directory.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(str(directory / name), format="png", dpi=DPI, metadata={"Software": None})
    width, height = fig.get_size_inches() * DPI
    return Chart(name, int(round(width)), int(round(height)))


def roc(
    directory: Path, name: str, labels: np.ndarray, probs: np.ndarray, contexts: Sequence[str], title: str
) -> Chart:
    """One ROC curve per context from stored predictions (when the evaluation's own PNG is
    missing); contexts whose labels are all equal have no curve."""
    fig = _figure(8, 7)
    ax = fig.add_subplot()
    from matplotlib import colormaps

    colours = colormaps["tab20"]
    for c, context in enumerate(contexts):
        y = labels[:, c].astype(bool)
        if y.all() or not y.any():
            continue
        order = np.argsort(-probs[:, c], kind="stable")
        tp = np.concatenate([[0], np.cumsum(y[order])]) / y.sum()
        fp = np.concatenate([[0], np.cumsum(~y[order])]) / (~y).sum()
        ax.plot(fp, tp, color=colours(c % 20), linewidth=1.2, label=f"{context} ({trapezoid(tp, fp):.2f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8, ncol=2, title="context (AUC)")
    return _save(fig, directory, name)
