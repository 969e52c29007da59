"""Scoring in a chained refresh scores only what changed: tracks whose spectrogram changed,
all tracks when the model changes, nothing when neither did (an untrained two-layer model:
the bookkeeping is under test, not the model)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from ctx_spark.cli import run_main
from ctx_spark.testing.audio import VIBE_ACE
from jobs.refresh_catalogue import main
from tests.refresh_helpers import SETTINGS, stage_dir, write_week1, write_week2

pytestmark = pytest.mark.slow
NAMES = ("car", "chill", "club", "dance", "gym", "happy", "night", "party", "relax", "running", "sad", "sleep",
         "summer", "work", "workout")  # fmt: skip


def write_model(directory: Path, seed: int) -> Path:
    from ctx_spark.audio.params import MelParams
    from ctx_spark.config import from_mapping, load_config
    from training.model import build_model, export_meta, write_export
    from training.settings import ModelSettings

    cfg = load_config()
    settings = from_mapping(
        ModelSettings, {**cfg.data["train"]["model"], "conv_filters": [4], "dense_units": 8}, "train.model"
    )
    params = cfg.section("audio", MelParams)
    n_mels, n_frames = params.shape
    write_export(str(directory), build_model(settings, (n_frames, n_mels), len(NAMES), seed=seed),
                 export_meta(params, NAMES))  # fmt: skip
    return directory


def run(root: Path, catalogue: Path, model: Path) -> dict:
    args = ["--catalogue", str(catalogue), "--root", str(root)]
    for item in SETTINGS + (f"refresh.model={model}",):
        args += ["--set", item]
    assert run_main(main, args) == 0
    run_id = (root / "current").read_text().strip()
    snapshot = root / "snapshots" / run_id
    m = json.loads((snapshot / "manifest.json").read_text())
    scores = pd.read_parquet(stage_dir(snapshot, "scores") / "track_scores")
    return {"manifest": m, "scores": {int(r.track_id): list(r.probabilities) for r in scores.itertuples()}}


def test_only_changed_spectrograms_and_models_are_scored(spark, tmp_path):
    week2 = write_week2(tmp_path / "week2", write_week1(tmp_path / "week1"))
    root = tmp_path / "root"
    first_model, second_model = write_model(tmp_path / "m1", 1), write_model(tmp_path / "m2", 2)
    first = run(root, week2, first_model)
    assert first["manifest"]["stages"]["score"]["rows"] == {"scored": 11, "reused": 0, "unusable": 0}

    # Track 4's file is rewritten (same bytes, new mtime): its spectrogram key changes.
    (week2 / "audio" / "4.ogg").unlink()
    shutil.copy(VIBE_ACE, week2 / "audio" / "4.ogg")
    second = run(root, week2, first_model)
    stages = second["manifest"]["stages"]
    assert stages["label"]["reused_from"] and stages["dataset"]["reused_from"]  # the tables did not change
    assert stages["extract"]["rows"]["computed"] == 1 and stages["extract"]["reused_from"] is None
    assert stages["score"]["rows"] == {"scored": 1, "reused": 10, "unusable": 0}
    assert second["scores"].keys() == first["scores"].keys()
    assert all(second["scores"][t] == first["scores"][t] for t in first["scores"] if t != 4)

    # Another model: everything is scored again, nothing else recomputed.
    third = run(root, week2, second_model)
    stages = third["manifest"]["stages"]
    assert [n for n, s in stages.items() if s["reused_from"]] == ["label", "dataset", "extract"]
    assert stages["score"]["rows"] == {"scored": 11, "reused": 0, "unusable": 0}
    assert third["scores"][1] != first["scores"][1]
