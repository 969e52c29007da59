"""Train and evaluate every loss variant and write the paper's Table 2 comparison.

  ctx-spark compare --shards S --out DIR [--variants v1,v2] [--conf FILE] [--set k=v ...]

For each variant (default: all five, paper order) trains into DIR/<variant>/ (resuming an
unfinished run, skipping a finished one) and evaluates into DIR/<variant>/evaluation/, then
writes DIR/table2.md, DIR/table2.csv and DIR/table2.json: the test split's macro metrics of
every variant at the fixed threshold and at thresholds tuned on validation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Optional

from ctx_spark.causes import output_errors
from ctx_spark.config import load_config
from ctx_spark.errors import ConfigError
from ctx_spark.logs import get_logger
from training import tables
from training.settings import LOSS_VARIANTS

log = get_logger("compare")


def _write_text(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with output_errors(path):
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)


def run_comparison(
    conf_file: Optional[str], overrides: Sequence[str], shards: str, out: str, variants: Sequence[str] = LOSS_VARIANTS
) -> dict[str, Any]:
    """Train + evaluate each variant under ``out``; returns the Table 2 data."""
    from training.evaluate import run_evaluation
    from training.model import write_json_file
    from training.train import run_training

    unknown = [v for v in variants if v not in LOSS_VARIANTS]
    if unknown:
        raise ConfigError(f"unknown loss variants {unknown}; expected some of {', '.join(LOSS_VARIANTS)}")
    with output_errors(out):
        os.makedirs(out, exist_ok=True)
    macros: dict[str, dict[str, dict[str, float]]] = {}
    runs: dict[str, Any] = {}
    for variant in variants:
        cfg = load_config(conf_file, list(overrides) + [f"train.loss.variant={variant}"])
        run_dir = os.path.join(out, variant)
        log.info("loss variant %s -> %s", variant, run_dir)
        report = run_training(cfg, shards, run_dir)
        result = run_evaluation(cfg, run_dir, shards, os.path.join(run_dir, "evaluation"))
        macros[variant] = {
            f"fixed {result['fixed_threshold']['threshold']}": result["fixed_threshold"]["macro"],
            f"tuned on {result['tune_split']}": result["tuned_thresholds"]["macro"],
        }
        runs[variant] = {
            "run_dir": run_dir,
            "best_epoch": report["best_epoch"],
            "epochs_completed": report["epochs_completed"],
            "best_val_loss": report["best_val_loss"],
        }
    title = f"Loss variants on the {result['test_split']} split (macro averages)"
    _write_text(os.path.join(out, "table2.md"), tables.table2_markdown(macros, title))
    _write_text(os.path.join(out, "table2.csv"), tables.table2_csv(macros))
    comparison = {
        "shards": shards,
        "variants": list(variants),
        "macro": macros,
        "runs": runs,
        "paper_table1_macro": tables.PAPER_TABLE1_MACRO,
    }
    write_json_file(os.path.join(out, "table2.json"), comparison)
    return comparison
