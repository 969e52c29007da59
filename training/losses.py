"""The paper's sample-level weighted cross-entropy (equation 2) and its Table 2 variants.

    L = -1/(N*C) sum_i sum_c [ w_ic y_ic log f_c(x_i) + wbar_ic (1 - y_ic) log(1 - f_c(x_i)) ]

with f clipped to [epsilon, 1 - epsilon]. The targets tensor carries the labels and all
three weight columns (``[labels | neg_exact | neg_ignore_zeros | pos_tfidf]``, see
training/data.py); the variant decides which weights enter:

===================== ================== =====================
variant               w (positive terms) wbar (negative terms)
===================== ================== =====================
none                  1                  1
negative_exact        1                  neg_exact
negative_ignore_zeros 1                  neg_ignore_zeros
both_exact            pos_tfidf          neg_exact
both_ignore_zeros     pos_tfidf          neg_ignore_zeros
===================== ================== =====================
"""

from __future__ import annotations

import keras
from keras import ops

from ctx_spark.shards import contract
from training.settings import LOSS_VARIANTS

#: (positive weight column or None, negative weight column or None) per variant.
VARIANT_WEIGHTS: dict[str, tuple[str | None, str | None]] = {
    "none": (None, None),
    "negative_exact": (None, "neg_exact"),
    "negative_ignore_zeros": (None, "neg_ignore_zeros"),
    "both_exact": ("pos_tfidf", "neg_exact"),
    "both_ignore_zeros": ("pos_tfidf", "neg_ignore_zeros"),
}
assert tuple(VARIANT_WEIGHTS) == LOSS_VARIANTS


def _block(y_true, name: str, n_contexts: int):
    k = contract.TARGET_COLUMNS.index(name)
    return y_true[:, k * n_contexts : (k + 1) * n_contexts]


@keras.saving.register_keras_serializable(package="ctx_spark")
class WeightedContextLoss(keras.losses.Loss):
    """Equation 2 for one variant.

    Args:
        variant: a key of :data:`VARIANT_WEIGHTS`.
        n_contexts: C; ``y_true`` is (B, 4C), ``y_pred`` (B, C) probabilities.
        epsilon: clipping of the probabilities away from 0 and 1.

    ``call`` returns the per-sample mean over contexts (B,); Keras' default reduction
    averages it over the batch, giving the mean over batch and contexts.
    """

    def __init__(self, variant: str, n_contexts: int, epsilon: float, name: str = "weighted_context_loss", **kwargs):
        if variant not in VARIANT_WEIGHTS:
            raise ValueError(f"unknown loss variant {variant!r}; expected one of {', '.join(VARIANT_WEIGHTS)}")
        super().__init__(name=name, **kwargs)
        self.variant = variant
        self.n_contexts = int(n_contexts)
        self.epsilon = float(epsilon)

    def call(self, y_true, y_pred):
        c = self.n_contexts
        y_true = ops.cast(y_true, y_pred.dtype)
        labels = _block(y_true, contract.LABELS, c)
        positive, negative = VARIANT_WEIGHTS[self.variant]
        w = _block(y_true, positive, c) if positive else 1.0
        wbar = _block(y_true, negative, c) if negative else 1.0
        p = ops.clip(y_pred, self.epsilon, 1.0 - self.epsilon)
        terms = w * labels * ops.log(p) + wbar * (1.0 - labels) * ops.log(1.0 - p)
        return -ops.mean(terms, axis=-1)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"variant": self.variant, "n_contexts": self.n_contexts, "epsilon": self.epsilon})
        return config
