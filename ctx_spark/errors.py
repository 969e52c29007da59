"""Error types that jobs turn into a one-line message and a non-zero exit code.

A user who feeds a wrong table or a typo in a setting should read what is wrong and where,
not a Py4J stack trace; everything else is a bug and keeps its traceback.
"""


class CtxSparkError(Exception):
    """Base class for errors caused by the user's input or configuration."""


class ConfigError(CtxSparkError, ValueError):
    """A configuration file or override is malformed, unknown or out of range."""


class InputError(CtxSparkError, ValueError):
    """An input table, column, path or file does not meet its contract."""


class ConcurrentRunError(CtxSparkError, RuntimeError):
    """Another run holds the lock on the same output root."""


class OutputError(CtxSparkError, OSError):
    """An output cannot be written: no space left, no permission, a read-only filesystem."""
