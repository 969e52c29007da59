"""Where the site's inputs are: a refresh root, one snapshot, or separate stage outputs.

``R`` (a refresh root) is resolved through ``R/current`` once, as every reader of a root
does (docs/refresh.md, "Readers"); a snapshot directory is taken as it is; separate
outputs (``--labels``, ``--dataset``, ...) override or replace the snapshot's. The model
side is found from the snapshot's manifest when not given: ``inputs.model`` is the training
run that scored it, ``RUN/evaluation`` is where ``training.compare`` evaluates a run, and a
run's parent holding ``table2.*`` is that comparison.

Nothing here raises for a missing stage: a part that is absent or unreadable is recorded
with the reason, and the pages say so. Only a source that cannot be a snapshot at all (no
``current``, no stage directory) is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ctx_spark.errors import InputError
from ctx_spark.explorer.readers import local, read_json
from ctx_spark.refresh.references import resolve_path
from ctx_spark.registry import STAGES

#: Stage directories of a snapshot (the registry's output directories), by part name.
STAGE_DIRS = {stage.output_dir: stage.output_dir for stage in STAGES}
PARTS = ("labels", "dataset", "mels", "scores", "run", "evaluation", "comparison", "keywords")


class ExplorerError(InputError):
    """The source cannot be read as a snapshot or stage outputs (exit code 2, one line)."""


@dataclass
class Part:
    """One input of the site: where it is, how it was found, its report, or why it is absent."""

    name: str
    path: Optional[Path] = None
    how: str = ""
    report: Optional[dict] = None
    problem: Optional[str] = None

    @property
    def present(self) -> bool:
        return self.path is not None and self.problem is None


@dataclass
class Sources:
    """Everything the pages read from, resolved once."""

    parts: dict[str, Part]
    snapshot: Optional[Path] = None
    root: Optional[Path] = None
    manifest: Optional[dict] = None
    manifest_problem: Optional[str] = None
    audio_dir: Optional[Path] = None
    contexts: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> Part:
        return self.parts[name]

    def report(self, name: str) -> Optional[dict]:
        return self.parts[name].report if self.parts[name].present else None


def _snapshot_of(source: Path) -> tuple[Path, Optional[Path]]:
    """(snapshot directory, refresh root or None)."""
    if not source.exists():
        raise ExplorerError(f"--snapshot {source} does not exist")
    pointer = source / "current"
    if pointer.is_file():
        run_id = pointer.read_text(encoding="utf-8").strip()
        snapshot = source / "snapshots" / run_id
        if not run_id or not snapshot.is_dir():
            raise ExplorerError(f"{pointer} names {run_id!r}, but {snapshot} is not a directory")
        return snapshot, source
    if (source / "manifest.json").exists() or any((source / d).is_dir() for d in STAGE_DIRS.values()):
        return source, None
    if (source / "snapshots").is_dir():
        raise ExplorerError(f"{source} is a refresh root with nothing published yet (no {pointer})")
    raise ExplorerError(
        f"{source} is neither a refresh root (no current pointer) nor a snapshot "
        f"(no manifest.json, labels/, dataset/, mels/ or scores/)"
    )


def _stage_dir(path: Path, inner: str) -> Path:
    """Accept a stage's table (``O/track_labels``) where its output directory is meant."""
    if path.name == inner and (path.parent / "report.json").exists():
        return path.parent
    return path


def _load(part: Part, report_file: Optional[str] = "report.json") -> Part:
    if part.path is None:
        part.problem = part.problem or "not given and not found"
        return part
    if not part.path.exists():
        part.problem = f"{part.path} does not exist"
        return part
    if report_file is not None:
        part.report, problem = read_json(part.path / report_file)
        if problem:
            part.problem = problem
    return part


def _context_names(src: Sources) -> list[str]:
    """The configured context order, from the first place that records it."""
    labels = src.report("labels") or {}
    if isinstance(labels.get("contexts"), dict):
        return [str(n) for n in labels["contexts"]]
    for name in ("dataset", "scores"):
        names = (src.report(name) or {}).get("contexts")
        if isinstance(names, list) and names:
            return [str(n) for n in names]
    configured = ((src.manifest or {}).get("config") or {}).get("contexts")
    if isinstance(configured, list) and configured:
        return [str(c.get("name")) for c in configured if isinstance(c, dict)]
    meta = src["run"].report if src["run"].present else None
    if meta and isinstance(meta.get("contexts"), list):
        return [str(n) for n in meta["contexts"]]
    if src["scores"].present:
        from ctx_spark.explorer.readers import ranking_partitions

        assert src["scores"].path is not None  # present
        return sorted(ranking_partitions(src["scores"].path / "context_rankings"))
    return []


def resolve(
    source: Optional[Path] = None,
    *,
    given: Optional[dict[str, Optional[Path]]] = None,
    audio_dir: Optional[Path] = None,
) -> Sources:
    """Resolve the inputs of a site.

    Args:
        source: a refresh root (``R/current`` is followed) or a snapshot directory; None
            when only separate outputs are given.
        given: separate outputs by part name (``labels``, ``dataset``, ``mels``, ``scores``,
            ``run``, ``evaluation``, ``comparison``, ``keywords``); each overrides the
            snapshot's.
        audio_dir: the catalogue's audio directory (default: the manifest's).

    Raises:
        ExplorerError: ``source`` is not a root or snapshot, or nothing at all was given.
    """
    given_paths = {k: v for k, v in (given or {}).items() if v is not None}
    unknown = set(given_paths) - set(PARTS)
    if unknown:
        raise ExplorerError(f"unknown parts {sorted(unknown)}; expected some of {', '.join(PARTS)}")
    if source is None and not given_paths:
        raise ExplorerError(
            "nothing to report on: give --snapshot R or some of --labels/--dataset/--mels/--scores/"
            "--run/--evaluation/--comparison"
        )
    snapshot, root = _snapshot_of(Path(source)) if source is not None else (None, None)
    parts = {name: Part(name) for name in PARTS}
    for name, directory in STAGE_DIRS.items():
        if snapshot is not None:  # a stage reused by reference: where its data is
            parts[name].path, parts[name].how = Path(resolve_path(str(snapshot / directory))), "snapshot"
    if snapshot is not None and (snapshot / "keywords").is_dir():
        parts["keywords"].path, parts["keywords"].how = snapshot / "keywords", "snapshot"
    for name, path in given_paths.items():
        parts[name].path, parts[name].how = Path(path), "given"
    if "labels" in given_paths:
        parts["labels"].path = _stage_dir(Path(given_paths["labels"]), "track_labels")
    if "dataset" in given_paths:
        parts["dataset"].path = _stage_dir(Path(given_paths["dataset"]), "dataset")
    src = Sources(parts=parts, snapshot=snapshot, root=root)
    if snapshot is not None:
        src.manifest, src.manifest_problem = read_json(snapshot / "manifest.json")
    _find_model_side(src)
    for name in ("labels", "dataset", "mels", "scores", "keywords"):
        _load(parts[name])
    _load(parts["run"], None)
    if parts["run"].present:  # a run still training has no model_meta.json yet: still show its log
        assert parts["run"].path is not None  # present
        parts["run"].report, _ = read_json(parts["run"].path / "model_meta.json")
    _load(parts["evaluation"], "metrics.json")
    _load(parts["comparison"], "table2.json")
    inputs = (src.manifest or {}).get("inputs") or {}
    mels_inputs = (src.report("mels") or {}).get("inputs") or {}
    src.audio_dir = audio_dir or local(inputs.get("audio_dir")) or local(mels_inputs.get("audio_dir"))
    src.contexts = _context_names(src)
    return src


def _find_model_side(src: Sources) -> None:
    parts = src.parts
    if parts["run"].path is None:
        model = local(((src.manifest or {}).get("inputs") or {}).get("model"))
        if model is not None and model.is_dir():
            parts["run"].path, parts["run"].how = model, "manifest inputs.model"
        elif model is not None:
            parts["run"].problem = f"the manifest's model {model} is not a local directory"
        else:
            parts["run"].problem = "no training run given, and the snapshot was not scored with a model"
    run = parts["run"].path
    if parts["evaluation"].path is None:
        if run is not None and (run / "evaluation").is_dir():
            parts["evaluation"].path, parts["evaluation"].how = run / "evaluation", "RUN/evaluation"
        else:
            parts["evaluation"].problem = "no evaluation given" + (
                f", and {run}/evaluation does not exist" if run else ""
            )
    if parts["comparison"].path is None:
        parent = run.parent if run is not None else None
        if parent is not None and ((parent / "table2.json").exists() or (parent / "table2.csv").exists()):
            parts["comparison"].path, parts["comparison"].how = parent, "the training run's parent"
        else:
            parts["comparison"].problem = "no comparison (Table 2) given or found"
    if parts["keywords"].path is None:
        parts["keywords"].problem = "no keyword ranking given (jobs/rank_keywords.py --out K; pass --keywords K)"


def manifest_value(src: Sources, *keys: str) -> Any:
    """A nested manifest value, or None."""
    value: Any = src.manifest or {}
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
