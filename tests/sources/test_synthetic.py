"""The synthetic catalogue: determinism, the contract, realistic skew, every anomaly, titles
whose intent our matcher confirms, and labels in all 15 contexts from the real job."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ctx_spark import io, schema
from ctx_spark.config import load_config
from ctx_spark.errors import ConfigError
from ctx_spark.label.run import LabelInputs, run_label_stage
from ctx_spark.sources.cli import parse_params
from ctx_spark.sources.synthetic import CatalogueParams, generate_catalogue, table_paths
from ctx_spark.sources.title_text import GENERIC_TITLES, KEYWORD_TEMPLATES, NEAR_MISSES, PAIR_TEMPLATES, TitleBank
from ctx_spark.text import KeywordMatcher
from jobs.generate_catalogue import main as generate_main
from tests.conftest import TEST_SPARK_OVERRIDES


def _vocabulary(cfg) -> list[str]:
    return [w for words in cfg.vocabulary.values() for w in words]


def _generate(cfg, out: Path, **params) -> dict:
    return generate_catalogue(out, CatalogueParams(**params), dict(cfg.contexts.keywords), _vocabulary(cfg))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def catalogue_root(tmp_path_factory, config) -> Path:
    """A 100k-row catalogue, written in chunks of 1,000 playlists."""
    root = tmp_path_factory.mktemp("synthetic") / "catalogue"
    _generate(config, root, rows=100_000, seed=11, playlists_per_chunk=1_000)
    return root


@pytest.fixture(scope="module")
def catalogue(catalogue_root):
    """The catalogue read back with pandas: (manifest, playlists, playlist_tracks, tracks)."""
    manifest = json.loads((catalogue_root / "catalogue.json").read_text())
    paths = table_paths(catalogue_root)
    return manifest, *(pd.read_parquet(paths[t]) for t in ("playlists", "playlist_tracks", "tracks"))


def test_same_seed_same_bytes_other_seed_other_tables(config, tmp_path) -> None:
    _generate(config, tmp_path / "a", rows=20_000, seed=3, playlists_per_chunk=100)
    _generate(config, tmp_path / "b", rows=20_000, seed=3, playlists_per_chunk=100)
    _generate(config, tmp_path / "c", rows=20_000, seed=4, playlists_per_chunk=100)
    a, b, c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert sorted(a) == [
        "catalogue.json",
        "playlist_tracks/part-00000.parquet",
        "playlists/part-00000.parquet",
        "tracks/part-00000.parquet",
    ]
    assert a == b
    assert a["playlist_tracks/part-00000.parquet"] != c["playlist_tracks/part-00000.parquet"]


def test_rerun_replaces_the_catalogue_atomically(config, tmp_path) -> None:
    out = tmp_path / "cat"
    _generate(config, out, rows=5_000, seed=1)
    _generate(config, out, rows=8_000, seed=1)
    manifest = json.loads((out / "catalogue.json").read_text())
    assert manifest["params"]["rows"] == 8_000
    assert [p.name for p in tmp_path.iterdir()] == ["cat"]  # no staging or retired directory left


def test_tables_meet_the_input_contract(spark, catalogue_root, catalogue) -> None:
    manifest = catalogue[0]
    paths = table_paths(catalogue_root)
    for table, contract in (
        ("playlists", schema.PLAYLISTS),
        ("playlist_tracks", schema.PLAYLIST_TRACKS),
        ("tracks", schema.TRACKS),
    ):
        df = io.read_table(spark, paths[table], contract)
        assert all(t in ("bigint", "string") for _, t in df.dtypes)
        assert df.count() == manifest["rows"][table]
    assert pq.read_schema(Path(paths["tracks"]) / "part-00000.parquet").field("album_id").nullable


def test_row_count_and_playlist_sizes(catalogue) -> None:
    manifest, playlists, playlist_tracks, _ = catalogue
    assert abs(len(playlist_tracks) - 100_000) < 0.03 * 100_000
    assert manifest["rows"]["playlist_tracks"] == len(playlist_tracks)
    sizes = playlist_tracks.drop_duplicates().groupby("playlist_id").size()
    assert 20 <= sizes.median() <= 40
    assert ((sizes >= 10) & (sizes <= 60)).mean() > 0.6  # most playlists
    assert (sizes > 100).mean() > 0.02  # some oversized ones
    assert playlists["playlist_id"].is_unique


def test_popularity_and_catalogue_are_skewed(catalogue) -> None:
    _, _, playlist_tracks, tracks = catalogue
    plays = playlist_tracks["track_id"].value_counts()
    top = plays.iloc[: len(tracks) // 100].sum() / len(playlist_tracks)
    assert top > 0.15  # the top 1% of tracks hold over 15% of the rows (Zipf)
    assert plays.iloc[0] > 20 * plays.median()
    per_artist = tracks.groupby("artist_id").agg(n=("track_id", "size"), albums=("album_id", "nunique"))
    assert per_artist["n"].median() <= 5 and per_artist["n"].max() >= 50
    assert per_artist["albums"].max() >= 10  # artists with many albums


def test_every_anomaly_is_present(catalogue) -> None:
    _, playlists, playlist_tracks, tracks = catalogue
    assert playlists["title"].isna().sum() > 0
    assert tracks["album_id"].isna().sum() > 0
    assert (~playlist_tracks["track_id"].isin(tracks["track_id"])).sum() > 0  # unknown track ids
    assert playlist_tracks.duplicated().sum() > 0  # duplicate rows
    known = playlist_tracks.drop_duplicates().merge(tracks, on="track_id")
    per_playlist = known.groupby("playlist_id").agg(
        artists=("artist_id", "nunique"), albums=("album_id", "nunique"), n=("track_id", "size")
    )
    assert ((per_playlist["artists"] == 1) & (per_playlist["n"] >= 5)).sum() > 0  # single-artist playlists
    assert ((per_playlist["albums"] == 1) & (per_playlist["n"] >= 5)).sum() > 0  # single-album playlists


def test_titles_match_contexts_vocabulary_and_near_misses(config, catalogue) -> None:
    _, playlists, _, _ = catalogue
    titles = playlists["title"].dropna()
    contexts = KeywordMatcher(dict(config.contexts.keywords))
    matched = titles.map(contexts.match)
    hits = pd.Series([c for cs in matched for c in cs]).value_counts()
    assert set(hits.index) == set(config.contexts.names)  # every context appears
    assert 0.08 < (matched.map(len) > 0).mean() < 0.2  # ~12% of titles, as in the MPD
    assert (matched.map(len) > 1).sum() > 0  # titles with two contexts
    vocab = KeywordMatcher({w: [w] for w in _vocabulary(config)})
    other = titles[(matched.map(len) == 0) & (titles.map(vocab.match).map(len) > 0)]
    assert len(other) > 0.05 * len(titles)  # titles with other vocabulary keywords
    joined = " ".join(titles)
    for text in ("açúcar", "#", "🔥"):
        assert text in joined
    assert any(not t.isascii() for t in titles) and any(t.isupper() for t in titles)
    near = titles[titles.str.lower().str.contains("car|workout|summer") & (matched.map(len) == 0)]
    assert len(near) > 0  # near misses: the word is there, the token is not


def test_every_title_matches_exactly_its_intended_contexts(config) -> None:
    bank = TitleBank(dict(config.contexts.keywords), _vocabulary(config))
    # The default config drops no word list entry (the lists are clean for it).
    assert len(bank.templates) == len(KEYWORD_TEMPLATES) and len(bank.pair_templates) == len(PAIR_TEMPLATES)
    assert len(bank.generic) == len(GENERIC_TITLES)
    assert set(NEAR_MISSES) <= set(bank.near_misses)
    rng = np.random.default_rng(5)
    n = 20_000
    kinds = rng.integers(0, 5, n)
    primary = np.where(kinds == 1, rng.integers(0, len(bank.names), n), -1)
    second = np.where((kinds == 1) & (rng.random(n) < 0.3), (primary + 1 + rng.integers(0, 14, n)) % 15, -1)
    titles = bank.titles(rng, kinds, primary, second)
    intended = bank.intended(kinds, primary, second)
    wrong = [(t, i, bank.matcher.match(t)) for t, i in zip(titles, intended) if bank.matcher.match(t) != i]
    assert wrong == []
    assert sum(t is None for t in titles) == (kinds == 0).sum()


def test_params_are_validated_and_parsed() -> None:
    with pytest.raises(ValueError, match="pool_share"):
        CatalogueParams(pool_share=1.5)
    with pytest.raises(ValueError, match="title rates"):
        CatalogueParams(context_title_rate=0.6, vocab_title_rate=0.5)
    params = parse_params(1_000, 2, ["pool_share=0.5", "size_max=200"])
    assert (params.rows, params.seed, params.pool_share, params.size_max) == (1_000, 2, 0.5, 200)
    with pytest.raises(ConfigError, match="expected an integer"):
        parse_params(1_000, 2, ["size_max=big"])
    with pytest.raises(ConfigError, match="unknown config key .--param.colour"):
        parse_params(1_000, 2, ["colour=red"])


def test_cli_writes_the_tables(tmp_path, capsys) -> None:
    assert generate_main(["--out", str(tmp_path / "c"), "--rows", "3000", "--seed", "9"]) == 0
    assert "catalogue written to" in capsys.readouterr().out
    assert (tmp_path / "c" / "tracks" / "part-00000.parquet").is_file()


def pandas_labels(
    root: Path, config, max_tracks: int = 100, max_share: float = 0.25, min_playlists: int = 3
) -> dict[int, list[int]]:
    """An independent pandas implementation of the labelling rules (docs/labelling.md), for small
    catalogues: track_id -> per-context playlist counts, for tracks with a label."""
    names = list(config.contexts.names)
    matcher = KeywordMatcher(dict(config.contexts.keywords))
    paths = table_paths(root)
    playlists = pd.read_parquet(paths["playlists"])
    pairs = pd.read_parquet(paths["playlist_tracks"]).drop_duplicates()
    tracks = pd.read_parquet(paths["tracks"])
    playlists["context"] = playlists["title"].map(lambda t: matcher.match(t) if isinstance(t, str) else [])
    matched = playlists[playlists["context"].map(len) > 0].explode("context")
    rows = pairs[pairs["playlist_id"].isin(matched["playlist_id"])].merge(tracks, on="track_id")
    size = rows.groupby("playlist_id").size()

    def largest(column: str) -> pd.Series:
        known = rows.dropna(subset=[column])
        return known.groupby(["playlist_id", column]).size().groupby("playlist_id").max().reindex(size.index).fillna(0)

    kept = size[
        (size <= max_tracks) & (largest("artist_id") / size <= max_share) & (largest("album_id") / size <= max_share)
    ].index
    counts = (
        matched[matched["playlist_id"].isin(kept)]
        .merge(rows, on="playlist_id")
        .groupby(["track_id", "context"])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=names, fill_value=0)
    )
    return {int(t): [int(x) for x in v] for t, v in counts.iterrows() if (v >= min_playlists).any()}


@pytest.mark.slow
def test_labelling_job_labels_all_contexts_at_200k_rows(spark, config, tmp_path) -> None:
    root = tmp_path / "catalogue"
    _generate(config, root, rows=200_000, seed=1)
    paths = table_paths(root)
    cfg = load_config(overrides=TEST_SPARK_OVERRIDES)
    report = run_label_stage(
        spark, cfg, LabelInputs(paths["playlists"], paths["playlist_tracks"], paths["tracks"]), str(tmp_path / "labels")
    )
    per_context = report["tracks_labelled_per_context"]
    assert all(n > 0 for n in per_context.values()), per_context
    assert 300 <= report["tracks_labelled"] <= 3_000
    removed = report["playlists_removed"]
    assert removed["oversized"] > 0 and removed["artist_dominated"] > 0 and removed["album_dominated"] > 0
    dropped = report["rows_dropped"]
    assert dropped["matched_playlist_tracks_unknown_track"] > 0 and dropped["matched_playlist_tracks_duplicate"] > 0
    assert report["rows_dropped"]["playlists_null_title"] > 0
    # The job's labels equal an independent pandas implementation of the rules.
    written = pd.read_parquet(tmp_path / "labels" / "track_labels")
    assert {int(r.track_id): [int(x) for x in r.n_playlists] for r in written.itertuples()} == pandas_labels(
        root, config
    )
    names = config.contexts.names
    assert all(
        list(r.contexts) == sorted(n for n, x in zip(names, r.n_playlists) if x >= 3) for r in written.itertuples()
    )
