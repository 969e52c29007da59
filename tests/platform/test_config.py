"""Configuration loading, overrides and typed sections."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pytest

from ctx_spark.config import from_mapping, load_config, parse_override
from ctx_spark.errors import ConfigError
from ctx_spark.label.settings import LabelSettings

CONTEXTS = (
    "car",
    "chill",
    "club",
    "dance",
    "gym",
    "happy",
    "night",
    "party",
    "relax",
    "running",
    "sad",
    "sleep",
    "summer",
    "work",
    "workout",
)


def test_defaults_hold_the_papers_contexts_and_thresholds(config) -> None:
    assert config.contexts.names == CONTEXTS
    assert all(config.contexts.keywords[c] == (c,) for c in CONTEXTS)
    settings = config.section("label", LabelSettings)
    assert (settings.max_tracks, settings.max_share, settings.min_playlists) == (100, 0.25, 3)


def test_vocabulary_has_four_categories_and_contains_the_contexts(config) -> None:
    vocabulary = config.vocabulary
    assert set(vocabulary) == {"location", "activity", "time", "mood"}
    words = [w for ws in vocabulary.values() for w in ws]
    assert 90 <= len(words) <= 100
    assert len(words) == len(set(words))
    assert set(CONTEXTS) <= set(words)


def test_set_overrides_parse_yaml_values() -> None:
    cfg = load_config(overrides=["label.min_playlists=5", "label.max_share=0.3"])
    settings = cfg.section("label", LabelSettings)
    assert settings.min_playlists == 5 and settings.max_share == 0.3
    assert "--set label.min_playlists=5" in cfg.sources


def test_set_reaches_dotted_keys_inside_open_spark_conf() -> None:
    cfg = load_config(overrides=["spark.conf.spark.sql.shuffle.partitions=7"])
    assert cfg.data["spark"]["conf"]["spark.sql.shuffle.partitions"] == 7


def test_conf_file_overlays_defaults(tmp_path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("label:\n  min_playlists: 4\ncontexts:\n  - {name: car, keywords: [car, road trip]}\n")
    cfg = load_config(str(path), ["label.max_tracks=50"])
    assert cfg.contexts.names == ("car",)
    assert cfg.contexts.keywords["car"] == ("car", "road trip")
    settings = cfg.section("label", LabelSettings)
    assert (settings.min_playlists, settings.max_tracks) == (4, 50)


@pytest.mark.parametrize(
    "override, message",
    [
        ("label.min_playlist=5", "did you mean min_playlists"),
        ("lable.min_playlists=5", "unknown config key 'lable'"),
        ("label", "must look like section.key=value"),
        ("label.min_playlists=[1", "not valid YAML"),
    ],
)
def test_bad_overrides_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


@pytest.mark.parametrize(
    "override, message",
    [
        ("label.min_playlists=three", "label.min_playlists: expected an integer"),
        ("label.max_share=1.5", r"max_share must be in \(0, 1\]"),
        ("label.max_tracks=0", "max_tracks must be >= 1"),
    ],
)
def test_bad_values_fail_when_the_section_is_read(override: str, message: str) -> None:
    cfg = load_config(overrides=[override])
    with pytest.raises(ConfigError, match=message):
        cfg.section("label", LabelSettings)


def test_missing_conf_file_and_bad_yaml(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("label: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))


def test_duplicate_context_is_refused(tmp_path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("contexts:\n  - {name: car}\n  - {name: car}\n")
    with pytest.raises(ConfigError, match="listed twice"):
        load_config(str(path))


@dataclass(frozen=True)
class _Inner:
    size: int


@dataclass(frozen=True)
class _Outer:
    name: str
    ratio: float
    inner: _Inner
    tags: tuple[str, ...]
    maybe: Optional[int]


def test_from_mapping_checks_nested_types() -> None:
    value = from_mapping(_Outer, {"name": "x", "ratio": 1, "inner": {"size": 2}, "tags": ["a"], "maybe": None}, "s")
    assert value == _Outer("x", 1.0, _Inner(2), ("a",), None)
    with pytest.raises(ConfigError, match=r"s.inner.size: expected an integer"):
        from_mapping(_Outer, {"name": "x", "ratio": 1, "inner": {"size": "2"}, "tags": [], "maybe": 1}, "s")
    with pytest.raises(ConfigError, match="missing key 's.tags'"):
        from_mapping(_Outer, {"name": "x", "ratio": 1, "inner": {"size": 2}, "maybe": 1}, "s")


def test_parse_override_keeps_strings_with_equals() -> None:
    assert parse_override("a.b=x=y") == ("a.b", "x=y")
    assert parse_override("a.b=[1, 2]") == ("a.b", [1, 2])
