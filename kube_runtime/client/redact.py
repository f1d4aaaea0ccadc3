"""Redaction of credentials from text that leaves the process (log lines, error messages, spans).

The first line of defence is not to put secrets into such text at all: credential objects hide
them in ``repr``, tracebacks are rendered without frame locals, spans carry no headers. This
module is the second line, for text that came from elsewhere (a library's debug line, an exec
plugin's stderr, an exception message quoting a header value): :func:`redact` replaces

* every bearer token after ``Bearer`` (any case), and
* every credential this process obtained (:func:`remember_secret`, called for each token a
  :class:`~kube_runtime.client.auth.Credentials` holds), wherever it appears,

with ``<redacted>``.

Guarantees: a remembered secret never survives :func:`redact`, however it is quoted (as long as
it appears verbatim). The most recent :data:`MAX_REMEMBERED` secrets are kept (a rotating token
gets a new entry per rotation; old ones age out). Thread-safe enough for logging from worker
threads: the set is replaced, never mutated in place, while being read.

Pitfalls: a secret transformed before it is printed (base64, truncated, split across lines) is
not recognised; secrets shorter than :data:`MIN_SECRET_LENGTH` are not remembered (replacing
short strings everywhere would mangle unrelated text). Cost: one regex search plus one substring
test per remembered secret, per call.
"""

from __future__ import annotations

import re
import threading
from typing import Final

__all__ = ["MAX_REMEMBERED", "MIN_SECRET_LENGTH", "REDACTED", "redact", "remember_secret"]

REDACTED: Final = "<redacted>"
#: How many secrets are remembered at most (the most recent ones).
MAX_REMEMBERED: Final = 32
#: Shorter strings are not remembered.
MIN_SECRET_LENGTH: Final = 8

_BEARER = re.compile(r"(?i)(bearer\s+)[^\s'\",;}\]\\)]+")
_lock = threading.Lock()
#: Insertion-ordered (dict keys): the oldest is dropped first.
_remembered: dict[str, None] = {}
_snapshot: tuple[str, ...] = ()


def remember_secret(secret: str | None) -> None:
    """Redact ``secret`` from every later :func:`redact` call (ignored when too short)."""
    global _snapshot
    if not secret or len(secret) < MIN_SECRET_LENGTH:
        return
    with _lock:
        _remembered.pop(secret, None)
        _remembered[secret] = None
        while len(_remembered) > MAX_REMEMBERED:
            del _remembered[next(iter(_remembered))]
        # Longest first, so a secret containing another is replaced whole.
        _snapshot = tuple(sorted(_remembered, key=len, reverse=True))


def redact(text: str) -> str:
    """``text`` with bearer tokens and remembered secrets replaced by ``<redacted>``."""
    for secret in _snapshot:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    return text
