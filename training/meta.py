"""An exported model's files, checked without TensorFlow: ``model_meta.json`` and whether
``model.keras`` is a Keras archive at all.

Keras reports a truncated or corrupt ``model.keras`` as "File not found" (for a file that
exists), and a meta file with a missing key surfaces as a ``KeyError`` traceback; both are
the user's files to fix, so they end as one :class:`InputError` line naming the file.
"""

from __future__ import annotations

import json
import zipfile
from typing import Any

from ctx_spark.audio.params import MelParams
from ctx_spark.errors import InputError


def read_meta(path: str) -> dict[str, Any]:
    """The parsed ``model_meta.json``, with ``contexts`` (a list of names) and
    ``mel_params`` (valid :class:`MelParams`) checked.

    Raises:
        InputError: the file is missing, not JSON, or lacks or mangles those keys.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            meta = json.load(handle)
    except FileNotFoundError:
        raise InputError(f"model: {path} is missing; has training finished?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"model: {path} cannot be read as JSON ({exc}); train again or copy it again") from None
    contexts = meta.get("contexts") if isinstance(meta, dict) else None
    if not isinstance(contexts, list) or not contexts or not all(isinstance(c, str) for c in contexts):
        raise InputError(f"model: {path} has no list of context names ('contexts'); it is not a model_meta.json")
    try:
        mel_params(meta)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"model: {path} has no valid 'mel_params' ({exc}); it is not a model_meta.json") from None
    return meta


def mel_params(meta: dict[str, Any]) -> MelParams:
    """The mel parameters a model was trained on, from its meta."""
    return MelParams.from_dict(meta["mel_params"])


def check_archive(path: str) -> None:
    """Refuse a ``model.keras`` that is missing or not a zip archive (truncated, corrupt,
    or another kind of file), before Keras calls it "File not found".

    Raises:
        InputError: naming the file.
    """
    try:
        is_zip = zipfile.is_zipfile(path)
    except OSError as exc:
        raise InputError(f"model: {path} cannot be read ({exc})") from None
    if not is_zip:
        raise InputError(
            f"model: {path} is not a Keras archive (a .keras file is a zip file): truncated or corrupt? "
            "Export it again (train with the same --out) or copy it again"
        )
