"""Configuration: YAML defaults from ``conf/``, a user file on top, ``--set`` overrides last.

Every value a user might change lives in ``conf/*.yaml`` (one top-level section per file,
plus ``contexts.yaml``), so the defaults are in one place and documented next to their
values. The files ship inside the package (``ctx_spark/conf``, read with
:mod:`importlib.resources`), so an installed wheel works from any directory; a source
checkout reads its ``conf/``. Code never carries its own copy of a default: a stage asks for its section as a
frozen dataclass (``cfg.section("label", LabelSettings)``) and gets a clear error naming the
key when a value is missing, unknown or of the wrong type.

Overrides are ``dotted.key=value`` with the value parsed as YAML, so ``--set
label.min_playlists=5`` gives an int and ``--set 'audio.extensions=[mp3, ogg]'`` a list.
An override may only change a key that exists in the defaults (typos fail loudly), except
inside the open mappings listed in :data:`OPEN_MAPPINGS` (free-form Spark settings).
"""

from __future__ import annotations

import collections.abc
import copy
import dataclasses
import difflib
import importlib.resources
import os
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, TypeVar

import yaml

from ctx_spark.errors import ConfigError

T = TypeVar("T")

#: Mappings whose keys are free-form (any Spark or Hadoop setting may be added there).
OPEN_MAPPINGS: frozenset[str] = frozenset({"spark.conf"})

#: Environment variable that points at another directory of default YAML files.
CONF_DIR_ENV = "CTX_SPARK_CONF_DIR"


def default_conf_dir() -> Path:
    """Locate the directory of default YAML files.

    Search order: ``$CTX_SPARK_CONF_DIR``; ``ctx_spark/conf`` inside the installed package
    (a wheel: the build copies the checkout's ``conf/*.yaml`` there); ``conf/`` beside the
    package (a source checkout or an editable install).
    """
    env = os.environ.get(CONF_DIR_ENV)
    candidates = [Path(env)] if env else []
    packaged = importlib.resources.files("ctx_spark") / "conf"
    if isinstance(packaged, Path):
        candidates.append(packaged)
    candidates.append(Path(__file__).resolve().parent.parent / "conf")
    for candidate in candidates:
        if (candidate / "contexts.yaml").is_file():
            return candidate
    raise ConfigError(
        "cannot find the default configuration (contexts.yaml); looked in "
        + ", ".join(str(c) for c in candidates)
        + f". Set {CONF_DIR_ENV} to the project's conf/ directory."
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top, got {type(data).__name__}")
    return data


def _leaves(data: Mapping[str, Any], where: str = "") -> Iterable[str]:
    """Dotted keys of every value (not section) in ``data``."""
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if isinstance(value, Mapping) and value and path not in OPEN_MAPPINGS:
            yield from _leaves(value, path)
        elif isinstance(value, Mapping) and path in OPEN_MAPPINGS:
            yield from (f"{path}.{k}" for k in value)
        else:
            yield path


def _merge(
    base: dict[str, Any], extra: Mapping[str, Any], where: str, source: str, origins: Optional[dict[str, str]] = None
) -> None:
    """Deep-merge ``extra`` into ``base`` in place, refusing keys the defaults do not have;
    record in ``origins`` where each replaced value came from."""
    for key, value in extra.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in base:
            if where in OPEN_MAPPINGS:
                base[key] = copy.deepcopy(value)
                if origins is not None:
                    origins[path] = source
                continue
            raise ConfigError(_unknown_key_message(path, base, source))
        if isinstance(base[key], dict) and isinstance(value, Mapping):
            _merge(base[key], value, path, source, origins)
        else:
            base[key] = copy.deepcopy(value)
            if origins is not None:
                for leaf in _leaves({path: value}) if isinstance(value, Mapping) else [path]:
                    origins[leaf] = source


def _unknown_key_message(path: str, siblings: Mapping[str, Any], source: str) -> str:
    leaf = path.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(leaf, [str(k) for k in siblings], n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    known = ", ".join(sorted(str(k) for k in siblings))
    return f"{source}: unknown config key '{path}'{hint}; known keys here: {known}"


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``a.b.c=value`` into the dotted key and the YAML-parsed value."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like section.key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{text}' has an empty key part")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{text}': value is not valid YAML: {exc}") from None
    return key, value


def _apply_override(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    for depth in range(1, len(parts)):
        # Keys inside an open mapping may contain dots themselves (Spark settings).
        if ".".join(parts[:depth]) in OPEN_MAPPINGS:
            parts = parts[:depth] + [".".join(parts[depth:])]
            break
    node: Any = data
    for depth, part in enumerate(parts[:-1]):
        prefix = ".".join(parts[: depth + 1])
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(_unknown_key_message(prefix, node if isinstance(node, dict) else {}, "--set"))
        node = node[part]
    leaf = parts[-1]
    parent = ".".join(parts[:-1])
    if not isinstance(node, dict):
        raise ConfigError(f"--set {key}: '{parent}' is a value, not a section")
    if leaf not in node and parent not in OPEN_MAPPINGS:
        raise ConfigError(_unknown_key_message(key, node, "--set"))
    if isinstance(node.get(leaf), dict) and not isinstance(value, Mapping):
        raise ConfigError(f"--set {key}: '{key}' is a section; set one of its keys instead")
    node[leaf] = value


@dataclass(frozen=True)
class Contexts:
    """The ordered list of contexts and the keywords that mark a playlist title for each.

    ``names`` fixes the order of every 15-long vector in the pipeline (labels, weights,
    model outputs).
    """

    names: tuple[str, ...]
    keywords: Mapping[str, tuple[str, ...]]

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Position of a context in every vector."""
        return self.names.index(name)


def _parse_contexts(raw: Any) -> Contexts:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("contexts: expected a non-empty list of {name, keywords} entries")
    names: list[str] = []
    keywords: dict[str, tuple[str, ...]] = {}
    for i, entry in enumerate(raw):
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise ConfigError(f"contexts[{i}]: expected a mapping with 'name' and 'keywords'")
        name = entry["name"]
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"contexts[{i}].name: expected a non-empty string, got {name!r}")
        if name in keywords:
            raise ConfigError(f"contexts[{i}].name: context '{name}' is listed twice")
        words = entry.get("keywords", [name])
        if isinstance(words, str):
            words = [words]
        if not isinstance(words, list) or not words or not all(isinstance(w, str) for w in words):
            raise ConfigError(f"contexts[{i}].keywords ('{name}'): expected a non-empty list of strings")
        unknown = set(entry) - {"name", "keywords"}
        if unknown:
            raise ConfigError(f"contexts[{i}] ('{name}'): unknown keys {sorted(unknown)}")
        names.append(name)
        keywords[name] = tuple(words)
    return Contexts(names=tuple(names), keywords=types.MappingProxyType(keywords))


class Config:
    """The merged configuration of one run.

    Attributes:
        data: the merged nested mapping (defaults, then ``--conf``, then ``--set``).
        contexts: the parsed, ordered contexts.
        sources: the files and overrides that produced ``data``, for reports and manifests.
    """

    def __init__(self, data: dict[str, Any], sources: Sequence[str], origins: Optional[Mapping[str, str]] = None):
        self.data = data
        self.sources = tuple(sources)
        self.origins: dict[str, str] = dict(origins or {})
        self.contexts = _parse_contexts(data.get("contexts"))

    def origin(self, key: str) -> str:
        """Where the value at dotted ``key`` came from: a default file, ``--conf`` or ``--set``."""
        parts = key.split(".")
        for depth in range(len(parts), 0, -1):
            found = self.origins.get(".".join(parts[:depth]))
            if found is not None:
                return found
        return "default"

    def section(self, name: str, cls: type[T]) -> T:
        """Build the frozen dataclass ``cls`` from the top-level section ``name``."""
        if name not in self.data:
            raise ConfigError(_unknown_key_message(name, self.data, "config"))
        return from_mapping(cls, self.data[name], name)

    @property
    def vocabulary(self) -> dict[str, list[str]]:
        """Candidate keywords by category (location, activity, time, mood)."""
        vocab = self.data.get("vocabulary") or {}
        if not isinstance(vocab, Mapping):
            raise ConfigError("vocabulary: expected a mapping of category -> list of keywords")
        return {str(k): list(v) for k, v in vocab.items()}

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the merged configuration, for reports and manifests."""
        return copy.deepcopy(self.data)


def load_config(
    conf_file: Optional[str] = None,
    overrides: Iterable[str] = (),
    conf_dir: Optional[os.PathLike | str] = None,
) -> Config:
    """Load the defaults, then the user's file, then the ``--set`` overrides.

    Args:
        conf_file: optional YAML file whose keys replace the defaults' (same nesting).
        overrides: ``dotted.key=value`` strings, applied in order.
        conf_dir: directory of default YAML files; see :func:`default_conf_dir`.

    Raises:
        ConfigError: a file is missing or malformed, or a key is unknown.
    """
    directory = Path(conf_dir) if conf_dir is not None else default_conf_dir()
    data: dict[str, Any] = {}
    sources: list[str] = []
    origins: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        part = _read_yaml(path)
        clash = set(part) & set(data)
        if clash:
            raise ConfigError(
                f"{path}: top-level keys {sorted(clash)} are already defined by another file in {directory}"
            )
        data.update(part)
        sources.append(str(path))
        origins.update({leaf: f"default ({path.name})" for leaf in _leaves(part)})
    if conf_file:
        _merge(data, _read_yaml(Path(conf_file)), "", str(conf_file), origins)
        sources.append(str(conf_file))
    for text in overrides:
        key, value = parse_override(text)
        _apply_override(data, key, value)
        sources.append(f"--set {text}")
        origins.update(
            {leaf: f"--set {text}" for leaf in (_leaves({key: value}) if isinstance(value, Mapping) else [key])}
        )
    return Config(data, sources, origins)


# --- typed sections ---------------------------------------------------------------------


def from_mapping(cls: type[T], raw: Any, where: str) -> T:
    """Build dataclass ``cls`` from a mapping, checking names and types recursively.

    Supported field types: bool, int, float (accepts ints), str, Optional[X], list[X],
    tuple[X, ...], dict[str, X], Any, and nested dataclasses.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a section (mapping), got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = set(raw) - set(fields)
    if unknown:
        first = sorted(unknown)[0]
        raise ConfigError(_unknown_key_message(f"{where}.{first}", fields, "config"))
    values: dict[str, Any] = {}
    for name, field in fields.items():
        path = f"{where}.{name}"
        if name not in raw:
            if field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING:
                continue
            raise ConfigError(f"config: missing key '{path}'")
        values[name] = _coerce(hints[name], raw[name], path)
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}: {exc}") from None


def _coerce(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"config {path}: unexpected null")
    if dataclasses.is_dataclass(hint):
        return from_mapping(typing.cast(type[Any], hint), value, path)  # a field's hint: the class, not an instance
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config {path}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config {path}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"config {path}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config {path}: expected a string, got {value!r}")
    if origin in (list, tuple, collections.abc.Sequence) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config {path}: expected a list, got {value!r}")
        item = args[0] if args else Any
        items = [_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or hint is tuple else items
    if origin in (dict, collections.abc.Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"config {path}: expected a mapping, got {value!r}")
        item = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(item, v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    raise ConfigError(f"config {path}: cannot read {value!r} as {hint}")
