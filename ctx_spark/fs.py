"""One filesystem layer for everything that reads or writes files without Spark's JVM.

Spark jobs reach files through Hadoop's FileSystem API (:mod:`ctx_spark.io`); the code that
runs in Python (executor tasks writing shards, the trainer reading them, decoding audio,
the refresh's bookkeeping) goes through the rules below, one per kind of path, so a path
that works for one stage works for all of them:

- a bare path (``/data/x``, ``data/x``) and a ``file:`` URI (``file:/data/x``,
  ``file:///data/x``, ``file://localhost/data/x``) are local files;
- ``s3a://`` and ``s3n://`` (Hadoop's names) are opened as ``s3://`` by pyarrow;
- every other ``scheme://`` URI goes to pyarrow's filesystems (``hdfs://``, ``s3://``,
  ``gs://``, ``abfs://``...), and to fsspec when pyarrow does not know the scheme.
"""

from __future__ import annotations

import os
import posixpath
import urllib.parse
from typing import Any, Optional

import pyarrow.fs as pafs

#: Hadoop's scheme names that pyarrow knows under another name.
ARROW_SCHEMES = {"s3a": "s3", "s3n": "s3"}


def is_uri(path: str) -> bool:
    """Whether ``path`` names a scheme (``x://`` or ``file:``)."""
    return "://" in path or path.startswith("file:")


def is_local(path: str) -> bool:
    """A bare path or a ``file:`` URI."""
    return path.startswith("file:") or "://" not in path


def qualify(path: str) -> str:
    """Make a bare local path absolute; leave URIs (``scheme://``, ``file:``) as they are."""
    return path if is_uri(path) else os.path.abspath(path)


def local_path(text: str) -> Optional[str]:
    """The local filesystem path behind a bare path or ``file:`` URI; None for other URIs.

    Spark lists files as ``file:/dir/name`` without percent-encoding, while standard URIs
    (``file:///dir/a%20b.mp3``) are encoded: the raw path is used when it exists, the
    decoded one otherwise. A bare path is returned unchanged (relative stays relative).
    A ``file://host/...`` URI for another host is not local (None).
    """
    if text.startswith("file:"):
        rest = text[len("file:") :]
        if rest.startswith("//"):
            host, _, tail = rest[2:].partition("/")
            if host not in ("", "localhost"):
                return None
            rest = "/" + tail
        if os.path.exists(rest):
            return rest
        return urllib.parse.unquote(rest)
    if "://" in text:
        return None
    return text


def absolute_local_path(text: str) -> str:
    """:func:`local_path` made absolute.

    Raises:
        ValueError: ``text`` is not a local path.
    """
    path = local_path(text)
    if path is None:
        raise ValueError(f"{text} is not a local path")
    return os.path.abspath(path)


def _arrow_uri(uri: str) -> str:
    scheme, rest = uri.split("://", 1)
    return f"{ARROW_SCHEMES.get(scheme.lower(), scheme)}://{rest}"


def arrow_filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and the path inside it, for a local path or a URI.

    Raises:
        pyarrow.ArrowInvalid: pyarrow does not know the URI's scheme.
    """
    local = local_path(path)
    if local is not None:
        return pafs.LocalFileSystem(), posixpath.abspath(local)
    return pafs.FileSystem.from_uri(_arrow_uri(path))


def any_filesystem(uri: str) -> tuple[Any, str, str]:
    """(filesystem, path, kind) for a non-local URI: pyarrow first, fsspec for schemes
    pyarrow does not know. ``kind`` is ``pyarrow`` or ``fsspec``.

    Raises:
        OSError: neither knows how to open the URI.
    """
    try:
        fs, path = pafs.FileSystem.from_uri(_arrow_uri(uri))
        return fs, path, "pyarrow"
    except Exception:  # unknown scheme for pyarrow: let fsspec try
        pass
    try:
        import fsspec

        fs, path = fsspec.core.url_to_fs(uri)
        return fs, path, "fsspec"
    except Exception as exc:
        raise OSError(f"{uri}: no filesystem can open this URI ({type(exc).__name__}: {exc})") from None


def join(root: str, *parts: str) -> str:
    """``root/part/...`` for a path or URI (no normalisation of the root)."""
    return "/".join([root.rstrip("/"), *(p.strip("/") for p in parts)])


def dataset_url(path: str) -> str:
    """A URL petastorm accepts: URIs unchanged, local paths as ``file://``."""
    local = local_path(path)
    return "file://" + posixpath.abspath(local) if local is not None else path


def read_text(path: str) -> str:
    """A small text file through :func:`arrow_filesystem` (FileNotFoundError when absent)."""
    fs, inner = arrow_filesystem(path)
    try:
        with fs.open_input_stream(inner) as stream:
            return stream.read().decode("utf-8")
    except FileNotFoundError:
        raise
    except OSError as exc:
        if fs.get_file_info(inner).type == pafs.FileType.NotFound:
            raise FileNotFoundError(path) from None
        raise exc


def exists(path: str) -> bool:
    """Whether a file or directory exists at ``path``."""
    fs, inner = arrow_filesystem(path)
    return fs.get_file_info(inner).type != pafs.FileType.NotFound


def is_dir(path: str) -> bool:
    """Whether ``path`` is an existing directory."""
    fs, inner = arrow_filesystem(path)
    return fs.get_file_info(inner).type == pafs.FileType.Directory
