"""The JSON codec used on every hot path (orjson: about 2-3x the standard library on watch lines),
and :data:`KubeObject`, what every untyped layer passes around: a decoded Kubernetes object.

``loads`` accepts ``bytes``/``str``; ``dumps`` returns ``bytes``. Both raise ``ValueError`` subclasses
on bad input, like the standard library. ``dumps_for_yaml`` is ``dumps`` for a body the server
reads as YAML (server-side apply's ``application/apply-patch+yaml``).
"""

from __future__ import annotations

import re
from typing import Any, TypeAlias

import orjson

__all__ = ["KubeObject", "dumps", "dumps_for_yaml", "loads"]

#: A Kubernetes object as decoded JSON (``apiVersion``, ``kind``, ``metadata``...).
KubeObject: TypeAlias = dict[str, Any]

loads = orjson.loads

#: The UTF-8 of the characters JSON leaves unescaped but a YAML 1.1 reader does not read back as
#: themselves: NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR are line breaks to it (a string holding
#: one is folded: ``"a \u2028 b"`` is stored as ``"a\u2028b"``), and DEL, the other C1 controls and
#: U+FFFE/U+FFFF are outside its printable set (the body is refused). In valid UTF-8 each sequence
#: is exactly one such character, never part of another.
_YAML_UNSAFE = re.compile(rb"\x7f|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]|\xef\xbf[\xbe\xbf]")


def _escape(match: re.Match[bytes]) -> bytes:
    return b"\\u%04x" % ord(match.group().decode())


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def dumps_for_yaml(obj: Any) -> bytes:
    """``dumps(obj)`` with the characters a YAML reader would change or refuse written as JSON
    escapes, so that a server reading the body as YAML (kube-apiserver reads every apply body so)
    gets every string exactly as sent. The same JSON value; costs one scan of the body."""
    return _YAML_UNSAFE.sub(_escape, orjson.dumps(obj))
