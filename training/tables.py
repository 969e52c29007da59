"""Markdown/CSV tables shaped like the paper's Tables 1 and 2, and the ROC-curve figure."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence

import numpy as np

from training.metrics import METRIC_TITLES, METRICS

#: The paper's Table 1 macro averages (Ibrahim et al., ICASSP 2020), for reference.
PAPER_TABLE1_MACRO = {
    "hamming_loss": 0.32,
    "roc_auc": 0.73,
    "recall": 0.66,
    "precision": 0.69,
    "f1": 0.67,
    "tn_rate": 0.64,
}


def _fmt(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _csv(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def table1_rows(result: Mapping) -> tuple[list[str], list[list]]:
    """Rows per context plus the macro average; columns HL, AUC, Recall, Precision, F1,
    TN-rate and the threshold used. ``result`` is :func:`metrics.evaluate_predictions`."""
    header = ["context"] + [METRIC_TITLES[m] for m in METRICS] + ["threshold"]
    rows: list[list] = []
    for name, values in result["per_context"].items():
        rows.append([name] + [values[m] for m in METRICS] + [values["threshold"]])
    rows.append(["macro average"] + [result["macro"][m] for m in METRICS] + [None])
    return header, rows


def table1_markdown(result: Mapping, title: str) -> str:
    header, rows = table1_rows(result)
    text_rows = [[str(r[0])] + [_fmt(v) for v in r[1:-1]] + ["" if r[-1] is None else f"{r[-1]:.3f}"] for r in rows]
    return f"### {title}\n\n" + _markdown(header, text_rows)


def table1_csv(result: Mapping) -> str:
    header, rows = table1_rows(result)
    return _csv(header, [[r[0]] + ["" if v is None else repr(float(v)) for v in r[1:]] for r in rows])


def table2_rows(macros: Mapping[str, Mapping[str, Mapping[str, float]]]) -> tuple[list[str], list[list]]:
    """One row per (loss variant, thresholding); ``macros[variant][thresholding]`` holds the
    macro metrics (thresholding: ``fixed`` or ``tuned``)."""
    header = ["loss variant", "thresholds"] + [METRIC_TITLES[m] for m in METRICS]
    rows = []
    for variant, by_threshold in macros.items():
        for thresholding, values in by_threshold.items():
            rows.append([variant, thresholding] + [values[m] for m in METRICS])
    return header, rows


def table2_markdown(macros: Mapping, title: str) -> str:
    header, rows = table2_rows(macros)
    text = [[r[0], r[1]] + [_fmt(v) for v in r[2:]] for r in rows]
    paper = ["paper Table 1 (macro)", "0.5"] + [_fmt(PAPER_TABLE1_MACRO[m]) for m in METRICS]
    return f"### {title}\n\n" + _markdown(header, text + [paper])


def table2_csv(macros: Mapping) -> str:
    header, rows = table2_rows(macros)
    return _csv(header, [r[:2] + [repr(float(v)) for v in r[2:]] for r in rows])


def roc_figure(
    labels: np.ndarray, probs: np.ndarray, contexts: Sequence[str], aucs: Sequence[float], path: str, title: str
) -> None:
    """One ROC curve per context (legend with its AUC) on one figure, written as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(figsize=(8, 7), dpi=100)
    colours = plt.get_cmap("tab20")
    for c, name in enumerate(contexts):
        y = labels[:, c].astype(bool)
        if y.all() or not y.any():
            continue
        fpr, tpr, _ = roc_curve(y, probs[:, c])
        ax.plot(fpr, tpr, color=colours(c % 20), linewidth=1.2, label=f"{name} ({aucs[c]:.2f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8, ncol=2, title="context (AUC)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
