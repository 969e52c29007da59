"""End to end on generated shards: learnability, evaluation, the Table 2 comparison,
Spark scoring and prediction, with a tiny model on CPU."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import FIXTURES
from tests.train_helpers import N_FRAMES, N_MELS, TINY, tiny_config

warnings.filterwarnings("ignore", category=FutureWarning)
pytest.importorskip("tensorflow")

from ctx_spark.cli import main as ctx_spark_main  # noqa: E402
from ctx_spark.shards import contract  # noqa: E402
from ctx_spark.shards.reader import open_split  # noqa: E402
from ctx_spark.testing.shards import arrays_to_table, small_params, synthetic_split, write_synthetic_shards  # noqa: E402
from training import evaluate, metrics  # noqa: E402
from training.compare import run_comparison  # noqa: E402
from training.model import load_exported  # noqa: E402
from training.settings import train_settings  # noqa: E402
from training.train import run_training  # noqa: E402

C = 15
SIZES = {"train": 1024, "validation": 128, "test": 128}
EPOCHS = ("train.epochs=8",)


def _test_auc(cfg, run_dir, shards):
    settings = train_settings(cfg)
    exported = load_exported(run_dir)
    result = evaluate.predict_split(exported.model, open_split(shards, "test"), settings.data, C, 64, True)
    return metrics.macro(metrics.per_context(result["labels"], result["probs"], 0.5))["roc_auc"]


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """A tiny model trained on shards whose labels depend on band energy."""
    base = tmp_path_factory.mktemp("learn")
    shards = write_synthetic_shards(
        str(base / "shards"), small_params(N_MELS, N_FRAMES), C, SIZES, seed=21, row_group_size=64
    )
    cfg = tiny_config(*EPOCHS, "train.logging.tensorboard=true")
    report = run_training(cfg, shards, str(base / "run"))
    return {"shards": shards, "run": str(base / "run"), "report": report, "cfg": cfg, "base": base}


def test_learns_band_energy_contexts(learned):
    report = learned["report"]
    assert report["epochs_completed"] == 8 and report["optimizer_steps"] == 8 * 32
    assert _test_auc(learned["cfg"], learned["run"], learned["shards"]) > 0.9
    meta = json.load(open(os.path.join(learned["run"], "model_meta.json")))
    assert meta["input_shape"] == [N_FRAMES, N_MELS] and len(meta["contexts"]) == C
    assert meta["mel_params"]["n_mels"] == N_MELS
    log = open(os.path.join(learned["run"], "training_log.csv")).read().splitlines()
    assert log[0].split(",")[0] == "epoch" and len(log) == 9
    import glob

    import tensorflow as tf

    tags = {}
    for path in glob.glob(os.path.join(learned["run"], "tensorboard", "*", "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                assert value.metadata.plugin_data.plugin_name == "scalars"
                tags.setdefault((path.split(os.sep)[-2], value.tag), []).append(event.step)
    assert tags[("train", "epoch_loss")] == list(range(8))
    assert tags[("validation", "epoch_loss")] == list(range(8))
    assert ("train", "epoch_learning_rate") in tags


def test_shuffled_labels_stay_at_chance(tmp_path):
    shards = write_synthetic_shards(
        str(tmp_path / "shards"),
        small_params(N_MELS, N_FRAMES),
        C,
        SIZES,
        seed=21,
        row_group_size=64,
        shuffle_labels=True,
    )
    cfg = tiny_config(*EPOCHS)
    run_training(cfg, shards, str(tmp_path / "run"))
    assert abs(_test_auc(cfg, str(tmp_path / "run"), shards) - 0.5) < 0.08


def test_evaluate_cli_writes_the_tables(learned, capsys):
    out = str(learned["base"] / "evaluation")
    argv = ["--model", learned["run"], "--shards", learned["shards"], "--out", out]
    for item in TINY:
        argv += ["--set", item]
    assert ctx_spark_main(["evaluate", *argv]) == 0
    assert "macro, threshold 0.5" in capsys.readouterr().out
    names = sorted(os.listdir(out))
    assert names == [
        "metrics.json",
        "predictions.parquet",
        "roc_curves.png",
        "table1.md",
        "table1_fixed.csv",
        "table1_tuned.csv",
    ]
    result = json.load(open(os.path.join(out, "metrics.json")))
    assert result["fixed_threshold"]["macro"]["roc_auc"] > 0.9
    assert result["fixed_threshold"]["tracks"] == SIZES["test"]
    tuned = [v["threshold"] for v in result["tuned_thresholds"]["per_context"].values()]
    assert len(set(tuned)) > 1  # tuned per context on validation
    predictions = pq.read_table(os.path.join(out, "predictions.parquet"))
    assert predictions.num_rows == SIZES["test"]
    probs = np.array(predictions.column("probabilities").to_pylist())
    labels = np.array(predictions.column("labels").to_pylist())
    assert metrics.macro(metrics.per_context(labels, probs, 0.5))["f1"] == pytest.approx(
        result["fixed_threshold"]["macro"]["f1"]
    )
    with open(os.path.join(out, "roc_curves.png"), "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    # a second run replaces the directory atomically (no staging leftovers)
    assert ctx_spark_main(["evaluate", *argv]) == 0
    assert not [n for n in os.listdir(learned["base"]) if n.startswith(".staging") or n.startswith(".retired")]


def test_compare_trains_and_tabulates_all_five_variants(tmp_path):
    shards = write_synthetic_shards(
        str(tmp_path / "shards"),
        small_params(N_MELS, N_FRAMES),
        C,
        {"train": 96, "validation": 64, "test": 64},
        seed=4,
        row_group_size=32,
    )
    out = str(tmp_path / "compare")
    comparison = run_comparison(None, TINY + ("train.epochs=1",), shards, out)
    variants = ["none", "negative_exact", "negative_ignore_zeros", "both_exact", "both_ignore_zeros"]
    assert list(comparison["macro"]) == variants
    table = open(os.path.join(out, "table2.md")).read()
    for variant in variants:
        assert f"| {variant} | fixed 0.5 |" in table and f"| {variant} | tuned on validation |" in table
        meta = json.load(open(os.path.join(out, variant, "model_meta.json")))
        assert meta["loss_variant"] == variant
    losses = {v: comparison["runs"][v]["best_val_loss"] for v in variants}
    assert len({round(v, 5) for v in losses.values()}) == 5  # the weights changed the objective
    assert len(open(os.path.join(out, "table2.csv")).read().splitlines()) == 1 + 2 * 5


def test_score_tracks_on_spark(learned, spark, tmp_path):
    from ctx_spark.config import load_config
    from training.score.run import run_score_stage

    params = small_params(N_MELS, N_FRAMES)
    arrays = synthetic_split(60, params, C, np.random.default_rng(8))
    catalogue = {"track_id": arrays["track_id"], "mel": arrays["mel"]}
    table = arrays_to_table(catalogue, params, pa.string())
    blobs = table.column("mel").to_pylist()
    blobs[5] = blobs[5][:100]  # one unusable spectrogram: counted, not fatal
    table = table.set_column(1, "mel", pa.array(blobs, pa.binary()))
    root = tmp_path / "catalogue"
    (root / "all").mkdir(parents=True)
    (root / contract.PARAMS_FILE).write_text(params.to_json())
    pq.write_table(table, str(root / "all" / "part-0.parquet"), row_group_size=16)
    cfg = load_config(overrides=["score.batch_size=16", "score.arrow_batch_rows=20", "score.ranking_partitions=2"])
    out = str(tmp_path / "scored")
    report = run_score_stage(spark, cfg, learned["run"], str(root), out)
    assert report["rows_scored"] == 59 and report["rows_unusable"] == 1 and report["splits"] == ["all"]
    assert os.path.isfile(os.path.join(out, "report.json"))

    scores = pq.read_table(os.path.join(out, "track_scores")).to_pandas()
    assert len(scores) == 60 and scores.loc[scores.track_id == "5", "probabilities"].isna().all()
    exported = load_exported(learned["run"])
    good = [i for i in range(60) if i != 5]
    expected = exported.model.predict_on_batch(arrays["mel"][good].transpose(0, 2, 1).astype(np.float32))
    by_id = {
        row.track_id: np.asarray(row.probabilities) for row in scores.itertuples() if row.probabilities is not None
    }
    got = np.stack([by_id[str(i)] for i in good])
    np.testing.assert_allclose(got, expected, atol=1e-5)

    ranks = pq.read_table(os.path.join(out, "context_rankings")).to_pandas()
    assert len(ranks) == 59 * C
    for c, name in enumerate(exported.contexts):
        part = ranks[ranks.context == name].sort_values("rank")
        assert part["rank"].tolist() == list(range(1, 60))
        order = sorted(good, key=lambda i: (-float(np.float32(by_id[str(i)][c])), str(i)))
        assert part.track_id.tolist() == [str(i) for i in order]
    assert [t["track_id"] for t in report["top"]["car"]] == ranks[ranks.context == "car"].sort_values(
        "rank"
    ).track_id.tolist()[:5]


def test_predict_on_a_real_clip(learned, tmp_path, capsys):

    clip = FIXTURES / "audio" / "Kevin_MacLeod_-_Vibe_Ace.ogg"  # bundled CC-BY clip
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"not audio")
    assert ctx_spark_main(["predict", "--model", learned["run"], "--audio", str(clip), str(broken), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2
    assert sorted(lines[0]["probabilities"]) == sorted(learned["cfg"].contexts.names)
    assert all(0.0 <= p <= 1.0 for p in lines[0]["probabilities"].values())
    assert "error" in lines[1]
