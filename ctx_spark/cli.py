"""The ``ctx-spark`` command: one subcommand per stage, all on one parser style.

Each subcommand lives in its stage's room (``ctx_spark/<room>/cli.py``, ``training/cli.py``)
as a :class:`Command`, and is imported only when it runs, so ``ctx-spark label`` never
imports TensorFlow and ``ctx-spark --help`` imports nothing heavy. Every subcommand takes
``--conf FILE`` and repeatable ``--set section.key=value``; bad input or configuration ends
with a one-line ``error:`` message and exit code 2, never a traceback.

``jobs/*.py`` are the spark-submit entry points: each calls :func:`main` with its
subcommand's name.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Optional

from ctx_spark import __version__
from ctx_spark.config import Config, load_config
from ctx_spark.errors import ConfigError, CtxSparkError

#: Exit code for bad input or configuration (a clear message, no traceback).
EXIT_BAD_INPUT = 2


@dataclass(frozen=True)
class Command:
    """One subcommand.

    Attributes:
        description: what it reads, what it writes, and an example (``--help``).
        add_arguments: adds the subcommand's own options to its parser.
        run: does the work with the parsed options and the loaded configuration; returns
            the exit code.
        sections: the configuration sections it reads (names in :data:`SECTIONS`); each is
            built and range-checked before ``run``, so a bad value fails before the
            SparkSession (or TensorFlow) starts.
    """

    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Config], int]
    sections: tuple[str, ...] = ()


#: name -> (module:attribute of its Command, one-line summary, the extra it needs or None).
COMMANDS: dict[str, tuple[str, str, Optional[str]]] = {
    "generate-catalogue": ("ctx_spark.sources.cli:GENERATE", "write a synthetic catalogue (three input tables)", None),
    "import-mpd": ("ctx_spark.sources.cli:IMPORT_MPD", "import Spotify MPD slices as the three input tables", None),
    "rank-keywords": ("ctx_spark.label.cli:RANK", "rank candidate context keywords by playlist titles", None),
    "label": ("ctx_spark.label.cli:LABEL", "label tracks with contexts from their playlists' titles", None),
    "dataset": ("ctx_spark.dataset.cli:DATASET", "balance, split and weight the labelled tracks", None),
    "extract": ("ctx_spark.extract.cli:EXTRACT", "decode audio into log-mel shards", None),
    "train": ("training.cli:TRAIN", "train the CNN on the shards", "train"),
    "evaluate": ("training.cli:EVALUATE", "paper Table 1 on the validation and test shards", "train"),
    "compare": ("training.cli:COMPARE", "train and evaluate every loss variant (paper Table 2)", "train"),
    "predict": ("training.cli:PREDICT", "print the contexts a model hears in audio files", "train"),
    "score": ("training.cli:SCORE", "score a catalogue's shards and rank tracks per context", "train"),
    "refresh": ("ctx_spark.refresh.cli:REFRESH", "re-run the chain as one locked, resumable snapshot", None),
    "report": ("ctx_spark.explorer.cli:REPORT", "write the static HTML report site of a snapshot", None),
    "top": ("ctx_spark.commands:TOP", "print the top tracks of a context", None),
    "config": ("ctx_spark.commands:CONFIG", "print the effective configuration and where each value came from", None),
}

#: config section -> ``module:class`` of its typed, range-checked settings (imported when a
#: command that reads the section runs; none of these modules imports Spark jobs or TensorFlow).
SECTIONS: dict[str, str] = {
    "spark": "ctx_spark.spark:SparkSettings",
    "label": "ctx_spark.label.settings:LabelSettings",
    "dataset": "ctx_spark.dataset.settings:DatasetSettings",
    "audio": "ctx_spark.audio.params:MelParams",
    "extract": "ctx_spark.extract.settings:ExtractSettings",
    "refresh": "ctx_spark.refresh.settings:RefreshSettings",
    "score": "training.score.settings:ScoreSettings",
    "train": "training.settings:TrainSettings",
}

#: extra -> the packages it installs that its commands import.
EXTRAS: dict[str, tuple[str, ...]] = {"train": ("tensorflow", "keras", "sklearn"), "petastorm": ("petastorm",)}

#: extra -> what else to say about installing it. TensorFlow is not in the train extra
#: itself: the CPU or GPU build is the platform's choice (setup.cfg's tf-cpu, tf-gpu).
INSTALL_HINTS: dict[str, str] = {
    "train": (
        "; with no TensorFlow on the platform yet, add a build: 'ctx-spark[train,tf-cpu]' (CPU) or "
        "'ctx-spark[train,tf-gpu]' (NVIDIA GPU, Linux), docs/platforms.md"
    ),
    "petastorm": " (it needs pyarrow < 15, hence numpy < 2)",
}


def _absent(package: str) -> bool:
    """Whether ``package`` cannot be imported (without importing it)."""
    if package in sys.modules:
        return sys.modules[package] is None
    try:
        return importlib.util.find_spec(package) is None
    except (ImportError, ValueError):
        return True


def check_extra(command: str, extra: str) -> None:
    """Refuse to run ``command`` when its optional extra is not installed.

    Raises:
        CtxSparkError: naming the extra, the missing package and how to install it.
    """
    missing = [p for p in EXTRAS.get(extra, ()) if _absent(p)]
    if missing:
        raise CtxSparkError(
            f"ctx-spark {command} needs the '{extra}' extra ({', '.join(missing)} not installed): "
            f"pip install 'ctx-spark[{extra}]'{INSTALL_HINTS.get(extra, '')}"
        )


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """``--conf`` and repeatable ``--set``, which every subcommand takes."""
    parser.add_argument("--conf", metavar="FILE", help="YAML file overriding the defaults (same nesting)")
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        dest="overrides",
        help="override one setting, e.g. --set label.min_playlists=5 (repeatable; value parsed as YAML)",
    )


def job_parser(description: Optional[str], prog: Optional[str] = None) -> argparse.ArgumentParser:
    """A parser with the options every job shares: ``--conf`` and repeatable ``--set``."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_config_options(parser)
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    """Load the configuration named by ``--conf`` and ``--set``."""
    return load_config(args.conf, args.overrides)


def check_sections(cfg: Config, names: Sequence[str]) -> None:
    """Build every section in ``names`` (types and ranges checked by its dataclass).

    Raises:
        ConfigError: a value is missing, unknown, of the wrong type or out of range.
    """
    for name in names:
        if name not in SECTIONS:
            raise ConfigError(f"no settings class is known for the config section '{name}'")
        module_name, attribute = SECTIONS[name].split(":")
        cfg.section(name, getattr(importlib.import_module(module_name), attribute))


def run_main(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None) -> int:
    """Run a ``main``, turning user errors into a one-line message and exit code 2."""
    try:
        return main(argv)
    except CtxSparkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def load_command(name: str) -> Command:
    """Import the :class:`Command` named ``name``.

    Raises:
        CtxSparkError: the command needs an optional extra that is not installed (the
            message names the extra and how to install it).
    """
    target, _summary, extra = COMMANDS[name]
    if extra is not None:
        check_extra(name, extra)
    module_name, attribute = target.split(":")
    command = getattr(importlib.import_module(module_name), attribute)
    return command


def _top_parser() -> argparse.ArgumentParser:
    width = max(len(n) for n in COMMANDS)
    listing = "\n".join(f"  {name:<{width}}  {summary}" for name, (_, summary, _x) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="ctx-spark",
        description="Listening-context tags for music tracks from playlists and audio, on Spark.",
        epilog=f"commands:\n{listing}\n\n'ctx-spark COMMAND --help' shows a command's inputs, outputs and an example.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ctx-spark {__version__}")
    parser.add_argument("command", choices=list(COMMANDS), metavar="COMMAND", help="one of the commands below")
    return parser


def command_parser(name: str, command: Command) -> argparse.ArgumentParser:
    """The parser of one subcommand (its options, then ``--conf`` and ``--set``)."""
    parser = argparse.ArgumentParser(
        prog=f"ctx-spark {name}",
        description=command.description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_arguments(parser)
    add_config_options(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``ctx-spark`` console script (and of ``jobs/*.py``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        top = _top_parser()
        if not argv:
            top.print_help()
            return EXIT_BAD_INPUT
        top.parse_args(argv)  # --help, --version or an error
        return EXIT_BAD_INPUT
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        _top_parser().parse_args([name])  # prints the choices and exits 2
    try:
        from ctx_spark.platform import check_versions

        check_versions(COMMANDS[name][2])  # before any import that an unsupported version could break
        command = load_command(name)
        args = command_parser(name, command).parse_args(rest)
        cfg = config_from_args(args)
        check_sections(cfg, command.sections)
        return command.run(args, cfg)
    except CtxSparkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
