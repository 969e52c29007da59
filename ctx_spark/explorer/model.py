"""The model page: the training run (loss per epoch from ``training_log.csv``), the
evaluation (Table 1 at the fixed and the tuned thresholds, ROC curves) and the loss-variant
comparison (Table 2). Every file is small; ``predictions.parquet`` is read only to re-plot
the ROC curves when the evaluation's own figure is missing."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ctx_spark.explorer import charts, svg
from ctx_spark.explorer import html as H
from ctx_spark.explorer.readers import read_json
from ctx_spark.explorer.sources import Sources

#: The paper's Table 1 macro row (training/tables.py PAPER_TABLE1_MACRO), shown when the
#: comparison does not carry it.
PAPER_MACRO = {"HL": 0.32, "AUC": 0.73, "Recall": 0.66, "Precision": 0.69, "F1": 0.67, "TN-rate": 0.64}
METRIC_KEYS = (
    ("hamming_loss", "HL"),
    ("roc_auc", "AUC"),
    ("recall", "Recall"),
    ("precision", "Precision"),
    ("f1", "F1"),
    ("tn_rate", "TN-rate"),
)


def read_csv(path: Path) -> Optional[list[dict[str, str]]]:
    """Rows of a small CSV file with a header; None when missing or unreadable."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError):
        return None


def _float(text: Any) -> Optional[float]:
    try:
        return float(text) if text not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _metric_cell(text: Any, digits: int = 3) -> H.Cell:
    value = _float(text)
    return H.Cell("n/a" if value is None or np.isnan(value) else f"{value:.{digits}f}", "num")


def _csv_table(caption: str, rows: list[dict[str, str]], text_columns: int = 1) -> H.Raw:
    """A CSV's rows as a table: the first ``text_columns`` as text, numbers after them."""
    header = list(rows[0]) if rows else []
    body = [
        [
            *(r.get(h) for h in header[:text_columns]),
            *(_metric_cell(r.get(h), 3) if _float(r.get(h)) is not None else r.get(h) for h in header[text_columns:]),
        ]
        for r in rows
    ]
    return H.table(caption, header, body)


def _training(site, part) -> H.Raw:
    if not part.present:
        return H.notice(f"training run: {part.problem}")
    meta = part.report or {}
    report, _ = read_json(part.path / "train_report.json")
    report = report or {}
    facts = [
        ("run directory", str(part.path)),
        ("found", part.how),
        ("loss variant", meta.get("loss_variant") or report.get("loss_variant")),
        ("best epoch", meta.get("best_epoch", report.get("best_epoch"))),
        ("epochs completed", report.get("epochs_completed")),
        ("best validation loss", report.get("best_val_loss")),
        ("stopped early", report.get("stopped_early")),
        ("input shape", meta.get("input_shape")),
        ("contexts", len(meta.get("contexts") or []) or None),
    ]
    if not meta:
        facts.append(("model_meta.json", "absent (the run has not finished)"))
    parts = [H.key_values("Training run", facts)]
    log = read_csv(part.path / "training_log.csv")
    if not log:
        parts.append(H.notice(f"{part.path / 'training_log.csv'} is missing or empty"))
        return H.join(parts)
    header = list(log[0])
    epochs = [(_float(r.get("epoch")) or 0) + 1 for r in log]  # Keras logs epochs from 0
    losses = [h for h in header if h.endswith("loss")]
    if losses:
        parts.append(
            site.svg(
                svg.lines,
                "Training and validation loss per epoch (training_log.csv)",
                "Line chart of the loss per epoch for each loss column of the training log.",
                epochs,
                {h: [_float(r.get(h)) for r in log] for h in losses},
                "epoch",
            )
        )
    rows = [[H.num(int(e))] + [_metric_cell(r.get(h), 4) for h in header if h != "epoch"] for e, r in zip(epochs, log)]
    parts.append(
        H.details(
            f"Every epoch ({len(log)})",
            H.table("training_log.csv (epochs counted from 1)", ["epoch"] + [h for h in header if h != "epoch"], rows),
        )
    )
    return H.join(parts)


def _table1(site, src: Sources, part) -> H.Raw:
    if not part.present:
        return H.notice(f"evaluation: {part.problem}")
    metrics = part.report or {}
    fixed = (metrics.get("fixed_threshold") or {}).get("threshold")
    tuned_on = (metrics.get("tuned_thresholds") or {}).get("tuned_on") or metrics.get("tune_split")
    parts = [
        H.key_values(
            "Evaluation",
            [
                ("directory", str(part.path)),
                ("found", part.how),
                ("test split", metrics.get("test_split")),
                ("tracks", (metrics.get("fixed_threshold") or {}).get("tracks")),
                ("loss variant", metrics.get("loss_variant")),
                ("best epoch", metrics.get("best_epoch")),
            ],
        )
    ]
    both = []
    for name, title in (
        ("fixed", f"Table 1, fixed threshold {fixed if fixed is not None else ''}"),
        ("tuned", f"Table 1, per-context thresholds tuned on {tuned_on or 'validation'} for F1"),
    ):
        rows = read_csv(part.path / f"table1_{name}.csv")
        if rows:
            both.append(_csv_table(title, rows))
        else:
            both.append(H.notice(f"{part.path / f'table1_{name}.csv'} is missing or empty"))
    parts.append(H.cols(*both))
    image = site.copy_image(
        part.path / "roc_curves.png",
        "roc",
        "ROC curves, one per context, with their AUC",
        "ROC curves on the test split (the evaluation's figure)",
    )
    if image is None:
        image = _replot_roc(site, src, part.path / "predictions.parquet")
    parts.append(image)
    return H.join(parts)


def _replot_roc(site, src: Sources, path: Path) -> H.Raw:
    if not path.is_file():
        return H.notice("no ROC figure and no predictions.parquet to plot it from")
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(str(path), columns=["labels", "probabilities"])
        meta = table.schema.metadata or {}
        names = meta.get(b"contexts", b"").decode().split(",") if b"contexts" in meta else list(src.contexts)
        labels = np.asarray(table.column("labels").to_pylist(), dtype=float)
        probs = np.asarray(table.column("probabilities").to_pylist(), dtype=float)
    except Exception as exc:  # damaged predictions: say so
        return H.notice(f"{path} could not be read: {type(exc).__name__}: {exc}", "error")
    return site.chart(
        charts.roc,
        "roc",
        "ROC curves, one per context, with their AUC",
        "ROC curves on the test split (re-plotted from predictions.parquet)",
        labels,
        probs,
        names,
        "ROC curves",
    )


def _table2(part) -> H.Raw:
    if not part.present:
        return H.notice(f"comparison: {part.problem}")
    rows = read_csv(part.path / "table2.csv")
    data = part.report or {}
    if not rows and isinstance(data.get("macro"), dict):  # rebuild from table2.json
        rows = [
            {"loss variant": v, "thresholds": t, **{title: str(m.get(k)) for k, title in METRIC_KEYS}}
            for v, by in data["macro"].items()
            for t, m in by.items()
        ]
    if not rows:
        return H.notice(f"{part.path} holds no readable table2.csv or table2.json")
    paper = data.get("paper_table1_macro")
    paper_row = {title: (paper or {}).get(k, PAPER_MACRO[title]) for k, title in METRIC_KEYS}
    rows = rows + [
        {
            "loss variant": "paper Table 1 (macro)",
            "thresholds": "0.5",
            **{h: str(paper_row.get(h, "")) for h in list(rows[0])[2:]},
        }
    ]
    return _csv_table("Table 2: macro averages of every loss variant on the test split", rows, 2)


def write_model(site) -> None:
    src: Sources = site.src
    run, evaluation, comparison = src["run"], src["evaluation"], src["comparison"]
    if not (run.present or evaluation.present or comparison.present):
        body = H.join(
            [
                H.tag(
                    "p",
                    "No model part: this page shows a training run, its evaluation and the loss-variant "
                    "comparison when they are given (--run, --evaluation, --comparison) or found "
                    "from the snapshot's manifest (inputs.model).",
                    class_="lead",
                ),
                H.notice(f"training run: {run.problem}"),
                H.notice(f"evaluation: {evaluation.problem}"),
                H.notice(f"comparison: {comparison.problem}"),
            ]
        )
    else:
        body = H.join(
            [
                H.tag(
                    "p",
                    "The model that scored this snapshot: how it trained, how it does on the test split "
                    "(the paper's Table 1) and how the loss variants compare (Table 2).",
                    class_="lead",
                ),
                H.section("Training", _training(site, run)),
                H.section("Evaluation (Table 1)", _table1(site, src, evaluation)),
                H.section("Loss variants (Table 2)", _table2(comparison)),
            ]
        )
    site.write("model.html", "Model", body)
