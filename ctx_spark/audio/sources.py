"""Where a track's bytes come from: a local path, a URI, or a file object.

Audio paths follow the one filesystem layer of :mod:`ctx_spark.fs` (bare paths and
``file:`` URIs are local; other URIs go to pyarrow's filesystems, then fsspec), and every
failure to reach the bytes is an :class:`~ctx_spark.audio.errors.AudioError` with reason
``missing`` or ``unreadable``, so the extraction job can record it and go on.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Optional, Union

from ctx_spark.audio.errors import MISSING, UNREADABLE, AudioError
from ctx_spark.fs import any_filesystem, local_path

Source = Union[str, "os.PathLike[str]", BinaryIO]

_CHUNK = 1 << 20


def describe(source: Source) -> str:
    """The source as it appears in messages."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return getattr(source, "name", None) or f"<{type(source).__name__}>"


def _remote(uri: str):
    """(filesystem, path, kind) for a non-local URI (:func:`ctx_spark.fs.any_filesystem`)."""
    try:
        return any_filesystem(uri)
    except OSError as exc:
        raise AudioError(UNREADABLE, str(exc)) from None


@dataclass(frozen=True)
class FileStat:
    """Size in bytes and modification time in ms since the epoch (None when unknown)."""

    size: int
    mtime_ms: Optional[int]


def stat_audio(source: Source) -> FileStat:
    """Size and modification time of a path or URI, for change detection.

    Raises:
        AudioError: ``missing`` when it does not exist, ``unreadable`` when it cannot be
            examined or is a directory.
    """
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError("stat_audio needs a path or URI")
    text = os.fspath(source)
    path = local_path(text)
    if path is not None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise AudioError(MISSING, f"{text}: no such file") from None
        except OSError as exc:
            raise AudioError(UNREADABLE, f"{text}: cannot stat ({exc.strerror or exc})") from None
        if not os.path.isfile(path):
            raise AudioError(UNREADABLE, f"{text}: not a regular file")
        return FileStat(int(st.st_size), st.st_mtime_ns // 1_000_000)
    fs, rpath, kind = _remote(text)
    try:
        if kind == "pyarrow":
            import pyarrow.fs as pafs

            info = fs.get_file_info(rpath)
            if info.type == pafs.FileType.NotFound:
                raise AudioError(MISSING, f"{text}: no such file")
            if info.type != pafs.FileType.File:
                raise AudioError(UNREADABLE, f"{text}: not a regular file")
            mtime = info.mtime_ns // 1_000_000 if info.mtime_ns is not None else None
            return FileStat(int(info.size), mtime)
        info = fs.info(rpath)
        if info.get("type") not in (None, "file"):
            raise AudioError(UNREADABLE, f"{text}: not a regular file")
        mtime = info.get("mtime") or info.get("LastModified") or info.get("last_modified")
        mtime_ms = (
            int(mtime.timestamp() * 1000)
            if hasattr(mtime, "timestamp")
            else (int(float(mtime) * 1000) if mtime is not None else None)
        )
        return FileStat(int(info["size"]), mtime_ms)
    except AudioError:
        raise
    except FileNotFoundError:
        raise AudioError(MISSING, f"{text}: no such file") from None
    except Exception as exc:
        raise AudioError(UNREADABLE, f"{text}: cannot stat ({type(exc).__name__}: {exc})") from None


@contextlib.contextmanager
def open_binary(source: Source) -> Iterator[tuple[Union[str, BinaryIO], int]]:
    """Yield (something soundfile opens, size in bytes); raise AudioError on open failures."""
    if not isinstance(source, (str, os.PathLike)):
        try:
            position = source.tell()
            size = source.seek(0, os.SEEK_END) - position
            source.seek(position)
        except (AttributeError, OSError, ValueError) as exc:
            raise AudioError(UNREADABLE, f"{describe(source)}: file object is not seekable ({exc})") from None
        yield source, size
        return
    text = os.fspath(source)
    path = local_path(text)
    if path is not None:
        size = stat_audio(path).size
        if not os.access(path, os.R_OK):
            raise AudioError(UNREADABLE, f"{text}: permission denied")
        yield path, size
        return
    size = stat_audio(text).size
    fs, rpath, kind = _remote(text)
    try:
        handle = fs.open_input_file(rpath) if kind == "pyarrow" else fs.open(rpath, "rb")
    except FileNotFoundError:
        raise AudioError(MISSING, f"{text}: no such file") from None
    except Exception as exc:
        raise AudioError(UNREADABLE, f"{text}: cannot open ({type(exc).__name__}: {exc})") from None
    with handle:
        yield handle, size


def checksum_audio(source: Source) -> str:
    """SHA-256 (hex) of the file's bytes, for checksum-based change detection."""
    digest = hashlib.sha256()
    with open_binary(source) as (target, _size):
        if isinstance(target, str):
            with open(target, "rb") as handle:
                for block in iter(lambda: handle.read(_CHUNK), b""):
                    digest.update(block)
        else:
            for block in iter(lambda: target.read(_CHUNK), b""):
                digest.update(block)
    return digest.hexdigest()
