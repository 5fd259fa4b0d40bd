"""Telling a transient failure (worth retrying) from a deterministic one (fail at once, with the cause).

Transient: a lost or refused connection, a timeout, an I/O error of the filesystem or network, a
database briefly locked or unreachable (SQLAlchemy ``OperationalError``), MLflow answering 5xx or
not at all. Anything else (a bug, bad data, a missing file) fails the same way on every attempt,
so retrying it only repeats a full training.
"""

from __future__ import annotations

import errno

from aqi_assets.core.text import shorten

#: OSError subclasses that are not passing conditions.
_DETERMINISTIC_OS_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)
_TRANSIENT_ERRNOS = {errno.EAGAIN, errno.EBUSY, errno.EIO, errno.ENOSPC, errno.ETIMEDOUT, errno.ECONNRESET,
                     errno.ECONNREFUSED, errno.ECONNABORTED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EPIPE}
#: Exception class names (checked by name, so no client library has to be imported) that are transient.
_TRANSIENT_NAMES = {"OperationalError", "MlflowUnavailable", "ReadTimeout", "ConnectTimeout", "ChunkedEncodingError"}
_TRANSIENT_WORDS = ("connection refused", "connection reset", "timed out", "temporarily unavailable",
                    "database is locked", "503", "502", "504", "max retries exceeded")


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a passing condition worth a retry."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _transient_itself(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _transient_itself(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    if type(exc).__name__ in _TRANSIENT_NAMES:
        return True
    if isinstance(exc, OSError) and not isinstance(exc, _DETERMINISTIC_OS_ERRORS):
        return exc.errno in _TRANSIENT_ERRNOS or exc.errno is None
    if type(exc).__name__ == "MlflowException":
        text = str(exc).lower()
        return any(word in text for word in _TRANSIENT_WORDS)
    return False


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` on one line, cut to ``limit`` characters."""
    text = " ".join(str(exc).split()) or "(no message)"
    text = f"{type(exc).__name__}: {text}"
    return shorten(text, limit)
