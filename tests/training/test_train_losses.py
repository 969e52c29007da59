"""The weighted loss variants against a hand computation, and the model the config builds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ctx_spark.audio.params import MelParams
from ctx_spark.config import load_config
from ctx_spark.errors import ConfigError

keras = pytest.importorskip("keras")

from training.losses import WeightedContextLoss  # noqa: E402
from training.model import build_model, build_optimizer  # noqa: E402
from training.settings import train_settings  # noqa: E402

C = 3
EPS = 1e-7
LABELS = [[1, 0, 1], [0, 0, 1], [1, 1, 0]]
NEG_EXACT = [[0.2, 0.5, 0.9], [1.5, 0.0, 0.3], [0.7, 0.4, 2.0]]
NEG_IGNORE = [[0.1, 0.6, 0.8], [1.0, 0.9, 0.2], [0.3, 0.5, 1.1]]
POS_TFIDF = [[2.0, 0.3, 0.5], [0.4, 1.2, 3.0], [0.8, 0.6, 1.7]]
# includes exact 0 and 1 to exercise the clipping
PROBS = [[0.9, 0.2, 1.0], [0.0, 0.6, 0.35], [0.55, 0.05, 0.7]]


def hand_loss(positive, negative) -> float:
    """Equation 2, one term at a time, averaged over the 3 x 3 (track, context) pairs."""
    total = 0.0
    for i in range(3):
        for c in range(C):
            y = LABELS[i][c]
            f = min(max(PROBS[i][c], EPS), 1 - EPS)
            w = positive[i][c] if positive else 1.0
            wbar = negative[i][c] if negative else 1.0
            total += -(w * y * math.log(f) + wbar * (1 - y) * math.log(1 - f))
    return total / 9


@pytest.mark.parametrize(
    "variant, positive, negative",
    [
        ("none", None, None),
        ("negative_exact", None, NEG_EXACT),
        ("negative_ignore_zeros", None, NEG_IGNORE),
        ("both_exact", POS_TFIDF, NEG_EXACT),
        ("both_ignore_zeros", POS_TFIDF, NEG_IGNORE),
    ],
)
def test_each_variant_matches_a_hand_computation(variant, positive, negative):
    # targets in contract order: labels | neg_exact | neg_ignore_zeros | pos_tfidf
    y_true = np.concatenate([LABELS, NEG_EXACT, NEG_IGNORE, POS_TFIDF], axis=1).astype(np.float32)
    loss = WeightedContextLoss(variant, C, EPS)
    value = float(loss(y_true, np.asarray(PROBS, np.float32)))
    assert value == pytest.approx(hand_loss(positive, negative), rel=1e-5)
    # serialisable (checkpoints hold it)
    again = WeightedContextLoss.from_config(loss.get_config())
    assert float(again(y_true, np.asarray(PROBS, np.float32))) == pytest.approx(value)


def test_variants_differ_and_unknown_variant_is_refused():
    y_true = np.concatenate([LABELS, NEG_EXACT, NEG_IGNORE, POS_TFIDF], axis=1).astype(np.float32)
    values = {
        v: float(WeightedContextLoss(v, C, EPS)(y_true, np.asarray(PROBS, np.float32)))
        for v in ("none", "negative_exact", "negative_ignore_zeros", "both_exact", "both_ignore_zeros")
    }
    assert len({round(v, 6) for v in values.values()}) == 5
    with pytest.raises(ValueError, match="unknown loss variant"):
        WeightedContextLoss("positive_only", C, EPS)
    with pytest.raises(ConfigError, match="loss.variant must be one of"):
        train_settings(load_config(overrides=["train.loss.variant=positive_only"]))


def test_default_model_is_the_papers():
    cfg = load_config()
    settings = train_settings(cfg)
    params = MelParams.from_dict(cfg.data["audio"])
    n_mels, n_frames = params.shape
    model = build_model(settings.model, (n_frames, n_mels), len(cfg.contexts))
    assert model.input_shape == (None, 646, 96)
    assert model.get_layer("input_norm") is not None
    assert [model.get_layer(f"conv_{i}").filters for i in range(1, 5)] == [32, 64, 128, 256]
    assert model.get_layer("conv_1").kernel_size == (3, 3)
    assert model.get_layer("pool_4").output.shape[1:] == (41, 6, 256)  # as the authors' 41 * 6 * 256
    dense = model.get_layer("dense")
    assert dense.units == 256 and dense.get_config()["activation"] == "relu"
    assert model.get_layer("dropout").rate == pytest.approx(0.3)
    out = model.get_layer("contexts")
    assert out.units == 15 and out.get_config()["activation"] == "sigmoid"
    optimizer = build_optimizer(settings.optimizer)
    assert isinstance(optimizer, keras.optimizers.Adadelta)
    schedule = optimizer._learning_rate
    assert float(schedule(999)) == pytest.approx(0.1)
    assert float(schedule(1000)) == pytest.approx(0.095)
    assert float(schedule(2500)) == pytest.approx(0.1 * 0.95**2)
    assert settings.early_stopping.patience == 10 and settings.data.batch_size == 32


def test_authors_code_switches():
    cfg = load_config(
        overrides=[
            "train.model.dense_activation=sigmoid",
            "train.model.dropout_mode=keep",
            "train.model.conv_filters=[4, 4]",
            "train.model.dense_units=8",
        ]
    )
    settings = train_settings(cfg)
    model = build_model(settings.model, (16, 32), 15)
    assert model.get_layer("dense").get_config()["activation"] == "sigmoid"
    assert model.get_layer("dropout").rate == pytest.approx(0.7)  # keep 30% = drop 70%
    assert model.output_shape == (None, 15)
    with pytest.raises(ConfigError, match="dropout_mode"):
        train_settings(load_config(overrides=["train.model.dropout_mode=sometimes"]))
