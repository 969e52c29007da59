"""A real refresh snapshot for the explorer tests, built once per test process.

The catalogue is the refresh tests' week 2 (tests/refresh_helpers.py, 12 tracks with
copies of a CC clip), with two changes that give the site something to escape and to
report: track 12's file lives in a sub-directory whose name is HTML
(``<img src=x onerror=alert(1)> & co``: the player's link must be percent-encoded and the
name shown as text), and track 11's "audio" is a text file holding a ``<script>`` element
(extraction rejects it as ``not_audio`` and quotes its first bytes in ``errors/``).

The run scores with a tiny untrained model, as tests/test_refresh.py does, written the way
``training.compare`` lays out a comparison (``CMP/<variant>/`` with ``evaluation/`` inside,
``CMP/table2.*``), so the site finds the model side from the manifest alone. Training a
model here would cost minutes; the training log, Table 1, the ROC figure and Table 2 are
written with the project's own writers (training/tables.py, training/metrics.py) from
seeded predictions, in the files' real formats.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from tests.refresh_helpers import SETTINGS, write_week1, write_week2

WEIRD_DIR = "<img src=x onerror=alert(1)> & co"
NOT_AUDIO = b"<script>alert('xss')</script> is not an Ogg stream\n" * 8
_CACHE: dict[str, Any] = {}


def write_catalogue(base: Path) -> Path:
    """Week 2's catalogue with track 12 under an HTML-named directory and track 11 not audio."""
    week1 = write_week1(base / "week1")
    week2 = write_week2(base / "week2", week1)
    audio = week2 / "audio"
    (audio / WEIRD_DIR).mkdir()
    os.replace(audio / "12.ogg", audio / WEIRD_DIR / "12.ogg")
    (audio / "11.ogg").write_bytes(NOT_AUDIO)  # a fresh copy in week 2, not a link to week 1's
    return week2


def training_log(epochs: int = 6) -> str:
    """A ``keras.callbacks.CSVLogger`` file: ``epoch`` (from 0), then the logged keys sorted."""
    lines = ["epoch,auc,learning_rate,loss,val_auc,val_loss"]
    for e in range(epochs):
        loss, val = 0.69 * 0.85**e, 0.70 * 0.9**e + 0.01 * max(0, e - 3)
        lines.append(f"{e},{0.5 + 0.05 * e:.4f},0.1,{loss:.6f},{0.5 + 0.04 * e:.4f},{val:.6f}")
    return "\n".join(lines) + "\n"


def write_model_side(base: Path, contexts: list[str]) -> Path:
    """A tiny exported model in ``base/compare/none`` with a training log, an evaluation
    and the comparison's Table 2; returns the run directory."""
    from ctx_spark.audio.params import MelParams
    from ctx_spark.config import from_mapping, load_config
    from training import metrics, tables
    from training.model import build_model, export_meta, write_export
    from training.settings import ModelSettings

    cfg = load_config()
    settings = from_mapping(
        ModelSettings, {**cfg.data["train"]["model"], "conv_filters": [4], "dense_units": 8}, "train.model"
    )
    params = cfg.section("audio", MelParams)
    n_mels, n_frames = params.shape
    run = base / "compare" / "none"
    write_export(
        str(run),
        build_model(settings, (n_frames, n_mels), len(contexts), seed=1),
        export_meta(params, contexts, loss_variant="none", best_epoch=5),
    )
    (run / "training_log.csv").write_text(training_log(), encoding="utf-8")
    (run / "train_report.json").write_text(
        json.dumps(
            {
                "stage": "train",
                "contexts": contexts,
                "loss_variant": "none",
                "epochs_completed": 6,
                "best_epoch": 5,
                "best_val_loss": 0.41,
                "stopped_early": False,
            }
        ),
        encoding="utf-8",
    )
    rng = np.random.default_rng(7)
    labels = (rng.random((60, len(contexts))) < 0.3).astype(np.uint8)
    probs = np.clip(0.35 * labels + 0.65 * rng.random(labels.shape), 0, 1)
    thresholds = metrics.tune_thresholds(labels, probs)
    fixed = metrics.evaluate_predictions(labels, probs, contexts, 0.5)
    tuned = metrics.evaluate_predictions(labels, probs, contexts, thresholds)
    evaluation = run / "evaluation"
    evaluation.mkdir()
    (evaluation / "table1_fixed.csv").write_text(tables.table1_csv(fixed), encoding="utf-8")
    (evaluation / "table1_tuned.csv").write_text(tables.table1_csv(tuned), encoding="utf-8")
    aucs = [fixed["per_context"][c]["roc_auc"] for c in contexts]
    tables.roc_figure(labels, probs, contexts, aucs, str(evaluation / "roc_curves.png"), "ROC curves, test split")
    (evaluation / "metrics.json").write_text(
        json.dumps(
            {
                "stage": "evaluate",
                "model": str(run),
                "loss_variant": "none",
                "best_epoch": 5,
                "tune_split": "validation",
                "test_split": "test",
                "fixed_threshold": {"threshold": 0.5, **fixed},
                "tuned_thresholds": {"tuned_on": "validation", **tuned},
                "paper_table1_macro": tables.PAPER_TABLE1_MACRO,
            }
        ),
        encoding="utf-8",
    )
    macros = {"none": {"fixed 0.5": fixed["macro"], "tuned on validation": tuned["macro"]}}
    (base / "compare" / "table2.csv").write_text(tables.table2_csv(macros), encoding="utf-8")
    (base / "compare" / "table2.json").write_text(
        json.dumps({"variants": ["none"], "macro": macros, "paper_table1_macro": tables.PAPER_TABLE1_MACRO}),
        encoding="utf-8",
    )
    return run


def real_snapshot(base_factory) -> dict[str, Any]:
    """One refresh run (label, dataset, extract, score) on a real local Spark session,
    cached for the whole test process; ``base_factory`` is pytest's tmp_path_factory."""
    if not _CACHE:
        from ctx_spark.cli import run_main
        from ctx_spark.config import load_config
        from jobs.refresh_catalogue import main

        base = base_factory.mktemp("explorer-snapshot")
        catalogue = write_catalogue(base)
        run = write_model_side(base, list(load_config().contexts.names))
        root = base / "root"
        argv = ["--catalogue", str(catalogue), "--root", str(root)]
        for item in SETTINGS + (f"refresh.model={run}",):
            argv += ["--set", item]
        assert run_main(main, argv) == 0
        run_id = (root / "current").read_text().strip()
        _CACHE.update(base=base, catalogue=catalogue, run=run, root=root, snapshot=root / "snapshots" / run_id)
    return _CACHE
