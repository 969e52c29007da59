"""Hostile inputs of training, evaluation, prediction and scoring: each ends as one line
naming the file and the cause (exit code 2 through the CLI), on real files: a real
metrics.json, real Keras archives (corrupt, truncated, refused by safe mode), real shards,
a real full device (/dev/full) and a real unwritable filesystem (/sys)."""

from __future__ import annotations

import json
import os
import stat
import warnings

import pytest

from ctx_spark.errors import ConfigError, InputError, OutputError
from ctx_spark.testing.shards import small_params, write_synthetic_shards
from tests.train_helpers import N_FRAMES, N_MELS, tiny_config

warnings.filterwarnings("ignore", category=FutureWarning)

keras = pytest.importorskip("keras")

from training.model import build_model, export_meta, load_exported, write_export, write_json_file  # noqa: E402
from training.predict import load_thresholds  # noqa: E402
from training.settings import train_settings  # noqa: E402

CONTEXTS = tiny_config().contexts.names


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text
    return text


# --- predict --thresholds ----------------------------------------------------------------


def _metrics(tmp_path, per_context) -> str:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"tuned_thresholds": {"per_context": per_context}}))
    return str(path)


def test_thresholds_from_a_real_metrics_json_are_read(tmp_path):
    per_context = {c: {"threshold": 0.1 + i / 100} for i, c in enumerate(CONTEXTS)}
    values = load_thresholds(_metrics(tmp_path, per_context), CONTEXTS, 0.5)
    assert values.tolist() == pytest.approx([0.1 + i / 100 for i in range(len(CONTEXTS))])
    assert load_thresholds(None, CONTEXTS, 0.3).tolist() == [0.3] * len(CONTEXTS)


@pytest.mark.parametrize(
    "case,words",
    [
        ("missing", "no such file"),
        ("directory", "is a directory"),
        ("not json", "is not JSON"),
        ("train report", "has no tuned_thresholds.per_context"),
        ("a context short", "no tuned threshold for contexts ['workout']"),
        ("not a number", "not a number in [0, 1]"),
    ],
)
def test_a_wrong_thresholds_file_is_one_line(tmp_path, case, words):
    good = {c: {"threshold": 0.5} for c in CONTEXTS}
    if case == "missing":
        path = str(tmp_path / "metrics.json")
    elif case == "directory":
        path = str(tmp_path)
    elif case == "not json":
        (tmp_path / "metrics.json").write_text("threshold: 0.5\n")
        path = str(tmp_path / "metrics.json")
    elif case == "train report":
        (tmp_path / "train_report.json").write_text(json.dumps({"stage": "train", "best_epoch": 3}))
        path = str(tmp_path / "train_report.json")
    elif case == "a context short":
        path = _metrics(tmp_path, {c: v for c, v in good.items() if c != "workout"})
    else:
        path = _metrics(tmp_path, {**good, "sleep": {"threshold": "high"}})
    with pytest.raises(InputError) as exc:
        load_thresholds(path, CONTEXTS, 0.5)
    assert _one_line(exc).startswith(f"--thresholds {path}: ") and words in str(exc.value)


def test_predict_with_a_wrong_thresholds_file_exits_2(tmp_path, capsys):
    from ctx_spark.cli import main

    run = tmp_path / "run"
    _export(run)
    code = main(["predict", "--model", str(run), "--audio", "x.mp3", "--thresholds", str(tmp_path / "nope.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --thresholds") and "no such file" in err[0]


# --- exported models ------------------------------------------------------------------------


def _export(run_dir, model=None) -> None:
    settings = train_settings(tiny_config())
    params = small_params(N_MELS, N_FRAMES)
    if model is None:
        model = build_model(settings.model, (N_FRAMES, N_MELS), len(CONTEXTS), seed=1)
    write_export(str(run_dir), model, export_meta(params, CONTEXTS, loss_variant="none"))


def test_a_good_export_loads(tmp_path):
    _export(tmp_path / "run")
    exported = load_exported(str(tmp_path / "run"))
    assert exported.contexts == tuple(CONTEXTS) and exported.input_shape == (N_FRAMES, N_MELS)


@pytest.mark.parametrize("damage", ["truncated", "not a model"])
def test_a_corrupt_model_file_is_named_not_file_not_found(tmp_path, damage):
    run = tmp_path / "run"
    _export(run)
    model = run / "model.keras"
    if damage == "truncated":
        model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    else:
        model.write_text("not a model\n")
    with pytest.raises(InputError) as exc:
        load_exported(str(run))
    text = _one_line(exc)
    assert f"{model} is not a Keras archive" in text and "File not found" not in text


def test_a_corrupt_meta_file_is_named(tmp_path):
    run = tmp_path / "run"
    _export(run)
    (run / "model_meta.json").write_text('{"contexts": ')
    with pytest.raises(InputError, match="model_meta.json cannot be read as JSON"):
        load_exported(str(run))
    (run / "model_meta.json").write_text(json.dumps({"contexts": list(CONTEXTS)}))
    with pytest.raises(InputError, match="has no valid 'mel_params'"):
        load_exported(str(run))


def _lambda_model():
    inputs = keras.Input(shape=(N_FRAMES, N_MELS))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    outputs = keras.layers.Dense(len(CONTEXTS), activation="sigmoid")(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs)


def test_a_model_refused_by_keras_safe_mode_is_one_line(tmp_path):
    run = tmp_path / "run"
    _export(run, _lambda_model())
    with pytest.raises(InputError) as exc:
        load_exported(str(run))
    assert "cannot be loaded" in _one_line(exc) and "safe_mode" in str(exc.value)


def test_score_checks_the_model_on_the_driver_before_any_task(spark, tmp_path):
    """The model is loaded once on the driver: a model every executor task would refuse
    fails before the shards are even opened (they do not exist here)."""
    from training.score.run import run_score_stage

    run = tmp_path / "run"
    _export(run, _lambda_model())
    with pytest.raises(InputError) as exc:
        run_score_stage(spark, tiny_config(), str(run), str(tmp_path / "no-shards"), str(tmp_path / "scores"))
    assert str(run / "model.keras") in _one_line(exc) and "safe_mode" in str(exc.value)


# --- shards -------------------------------------------------------------------------------


def _shards_with_an_empty_validation(tmp_path) -> str:
    root = write_synthetic_shards(
        str(tmp_path / "shards"),
        small_params(N_MELS, N_FRAMES),
        len(CONTEXTS),
        {"train": 20, "validation": 10},
        contexts=CONTEXTS,
    )
    for name in os.listdir(os.path.join(root, "validation")):
        os.remove(os.path.join(root, "validation", name))
    return root


def test_training_on_an_empty_split_directory_says_so(tmp_path):
    from training.train import run_training

    root = _shards_with_an_empty_validation(tmp_path)
    with pytest.raises(InputError) as exc:
        run_training(tiny_config(), root, str(tmp_path / "run"))
    assert _one_line(exc) == (
        f"mel shards: split directory {root}/validation holds no Parquet file (an interrupted extraction?)"
    )


def test_scoring_an_empty_split_directory_says_so(spark, tmp_path):
    from training.score.run import read_shards

    root = _shards_with_an_empty_validation(tmp_path)
    with pytest.raises(InputError) as exc:
        read_shards(spark, root, small_params(N_MELS, N_FRAMES), CONTEXTS)
    assert "validation: the split directory holds no Parquet file" in _one_line(exc)


# --- outputs --------------------------------------------------------------------------------


def test_a_full_disk_leaves_the_previous_file_and_no_temporary(tmp_path):
    """The temporary file is opened on /dev/full (a symlink at its name): the kernel's own
    ENOSPC, through the real writer."""
    try:
        is_device = stat.S_ISCHR(os.stat("/dev/full").st_mode)
    except OSError:
        is_device = False
    if not is_device:  # never write through the link to a /dev/full that is not the device
        pytest.skip("/dev/full is not the full device here")
    target = tmp_path / "run_config.json"
    target.write_text('{"old": true}\n')
    os.symlink("/dev/full", f"{target}.tmp-{os.getpid()}")
    with pytest.raises(OutputError) as exc:
        write_json_file(str(target), {"new": True, "padding": "x" * 100_000})
    assert _one_line(exc) == f"cannot write {target}: no space left on device (free space there or write elsewhere)"
    assert target.read_text() == '{"old": true}\n' and os.listdir(tmp_path) == ["run_config.json"]


def test_an_unwritable_run_directory_is_one_line(tmp_path):
    with pytest.raises(OutputError) as exc:
        _export("/sys/ctx-spark-test-run")
    assert _one_line(exc).startswith("cannot write /sys/ctx-spark-test-run")


# --- a finished run -----------------------------------------------------------------------


def _finished_run(tmp_path, cfg) -> str:
    run = tmp_path / "run"
    run.mkdir()
    section = cfg.to_dict()["train"]
    (run / "run_config.json").write_text(json.dumps({"shards": "S", "train": section, "contexts": list(CONTEXTS)}))
    (run / "train_report.json").write_text(json.dumps({"stage": "train", "best_epoch": 2}))
    return str(run)


def test_a_finished_run_is_left_alone_with_its_settings_and_refused_with_others(tmp_path):
    from training.train import run_training

    cfg = tiny_config()
    run = _finished_run(tmp_path, cfg)
    assert run_training(cfg, "S", run) == {"stage": "train", "best_epoch": 2}  # nothing to do
    assert run_training(tiny_config("train.logging.verbose=2"), "S", run)["best_epoch"] == 2
    with pytest.raises(ConfigError) as exc:
        run_training(tiny_config("train.loss.variant=both_exact", "train.epochs=7"), "S", run)
    text = _one_line(exc)
    assert "is a finished run trained with other settings (train.epochs, train.loss)" in text and "--restart" in text
