"""Validation of custom resources against their structural schema, worded as kube-apiserver words it.

:func:`validate` returns ``(field, reason, message)`` causes in the order kube-apiserver's OpenAPI
validator finds them at one node: type, ``anyOf``, string limits (only the first of maxLength,
minLength, pattern), format, number limits (multipleOf, minimum, maximum), items then minItems/
maxItems, enum, then for objects minProperties/maxProperties, additionalProperties, properties and
last ``required``. Messages are those of the real server, e.g. ``spec.replicas`` with
``Invalid value: "string": spec.replicas in body must be of type integer: "string"``.

Guarantees: never raises on any JSON value; an update is checked with *ratcheting* as in
Kubernetes 1.33+ (a value equal to the old value at the same map path is not re-validated, so a
schema made stricter does not block unrelated writes). Pitfalls: the real server walks properties
in Go's random map order, so when several properties fail the causes may come in another order
there; ``allOf``/``oneOf``/``not``, ``uniqueItems``, list-type and CEL rules
(``x-kubernetes-validations``) are not evaluated; only cheap formats are checked
(:data:`CHECKED_FORMATS`), other supported formats pass.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import math
import re
from decimal import Decimal
from typing import Any

import orjson

from kube_runtime.testing.apiserver.crschema import Schema

__all__ = ["CHECKED_FORMATS", "Cause", "go_value", "validate"]

Cause = tuple[str, str, str]  # (field, reason, message), as status.invalid() takes them

_MISSING: Any = object()
_UUID = re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _date_ok(s: str) -> bool:
    try:
        datetime.date.fromisoformat(s)
    except ValueError:
        return False
    return bool(_DATE.match(s))


def _date_time_ok(s: str) -> bool:
    if not _DATE_TIME.match(s):
        return False
    try:
        datetime.datetime.fromisoformat(s.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return False
    return True


def _ip_ok(version: int) -> Any:
    def check(s: str) -> bool:
        try:
            return ipaddress.ip_address(s).version == version
        except ValueError:
            return False

    return check


def _cidr_ok(s: str) -> bool:
    try:
        ipaddress.ip_network(s, strict=False)
    except ValueError:
        return False
    return "/" in s


def _byte_ok(s: str) -> bool:
    try:
        base64.b64decode(s, validate=True)
    except ValueError:
        return False
    return True


# Formats checked here (kube-apiserver checks more; the others are accepted unchecked). Keys are
# normalized as go-openapi does: without dashes.
CHECKED_FORMATS: dict[str, Any] = {
    "datetime": _date_time_ok,
    "date": _date_ok,
    "uuid": lambda s: bool(_UUID.match(s)),
    "ipv4": _ip_ok(4),
    "ipv6": _ip_ok(6),
    "cidr": _cidr_ok,
    "byte": _byte_ok,
    "password": lambda s: True,
}


# Go value formatting ---------------------------------------------------------------------------


def go_float(f: float) -> str:
    """``fmt.Sprintf("%v", f)`` of a Go float64 (shortest digits; exponent form below 1e-4 or from 1e6)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    sign, digits, exp = Decimal(repr(f)).normalize().as_tuple()
    assert isinstance(exp, int)
    ds = "".join(str(d) for d in digits)
    x = len(ds) + exp - 1  # decimal exponent of the first digit
    neg = "-" if sign else ""
    if x < -4 or x >= 6:
        mantissa = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{neg}{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if exp >= 0:
        return neg + ds + "0" * exp
    point = len(ds) + exp
    if point > 0:
        return f"{neg}{ds[:point]}.{ds[point:]}"
    return f"{neg}0.{'0' * -point}{ds}"


def go_quote(s: str) -> str:
    """``strconv.Quote(s)``: Go's double-quoted string (printable characters kept as they are)."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_value(value: Any) -> str:
    """A bad value as ``field.Error.ErrorBody`` prints it (simple types plainly, others as JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return go_quote(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """JSON equality that does not take ``true`` for ``1`` (for ratcheting)."""
    if type(a) is not type(b):
        return _is_number(a) and _is_number(b) and a == b
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _enum_match(value: Any, allowed: Any) -> bool:
    if allowed is None:
        return False
    if _is_number(allowed):
        if not _is_number(value):
            return False
        return int(value) == allowed if isinstance(allowed, int) else float(value) == allowed
    if isinstance(allowed, bool) or isinstance(value, bool):
        return isinstance(allowed, bool) and isinstance(value, bool) and allowed == value
    return type(value) is type(allowed) and _same(value, allowed)


# Validation ------------------------------------------------------------------------------------


class _Walk:
    """One validation run: the field prefix (``status`` for the status subresource) and the causes."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.causes: list[Cause] = []

    def field(self, name: str) -> str:
        name = name.removeprefix(".")
        if not name or name == ".":
            return self.prefix or "<nil>"
        return f"{self.prefix}.{name}" if self.prefix else name

    def add(self, name: str, reason: str, message: str) -> None:
        self.causes.append((self.field(name), reason, message))

    def invalid(self, name: str, value: Any, detail: str) -> None:
        self.add(name, "FieldValueInvalid", f"Invalid value: {go_value(value)}: {detail}")

    def type_invalid(self, name: str, value: Any, expected: str) -> None:
        detail = f"{name} in body must be of type {expected}: {go_quote(value)}"
        self.add(name, "FieldValueTypeInvalid", f"Invalid value: {go_quote(value)}: {detail}")

    # One node --------------------------------------------------------------------------------

    def node(self, value: Any, s: Schema, name: str, old: Any) -> None:
        if old is not _MISSING and _same(value, old):
            return  # ratcheting: unchanged values are not re-validated
        types = ["integer", "string"] if s.int_or_string else ([s.type] if s.type else [])
        if value is None:
            if types and not s.nullable:
                self.type_invalid(name, "null", ",".join(types))
            self.enum(value, s, name)
            return
        self.check_type(value, s, types, name)
        if s.any_of:
            self.any_of(value, s, name)
        if isinstance(value, str):
            self.string(value, s, name)
        if _is_number(value):
            self.number(value, s, name)
        if isinstance(value, list):
            self.array(value, s, name, old)
        self.enum(value, s, name)
        if isinstance(value, dict):
            self.object(value, s, name, old)

    def check_type(self, value: Any, s: Schema, types: list[str], name: str) -> None:
        """go-openapi's type check (a float with an integral value passes as an integer)."""
        actual = _json_type(value)
        supported_format = s.format.replace("-", "") in _SUPPORTED_FORMATS
        float_int = isinstance(value, float) and value.is_integer() and "integer" in types
        int_float = actual == "integer" and "number" in types
        ok = actual in types or float_int or int_float
        if ok:
            return
        if supported_format and not isinstance(value, (str, list)):
            go_kind = {"integer": "int64", "number": "float64"}.get(actual, "")
            self.type_invalid(name, go_kind, s.format)
        elif supported_format and "number" not in types and "integer" not in types:
            return  # go-openapi lets any string or list through a schema with a format
        elif types:
            self.type_invalid(name, actual, ",".join(types))

    def any_of(self, value: Any, s: Schema, name: str) -> None:
        best: list[Cause] | None = None
        for sub in s.any_of:
            walk = _Walk(self.prefix)
            walk.node(value, sub, name, _MISSING)
            if not walk.causes:
                return
            if best is None:
                best = walk.causes
        message = f"{go_quote(name)} must validate at least one schema (anyOf)"
        self.add("", "FieldValueInvalid", f'Invalid value: "": {message}')
        self.causes.extend(best or ())

    def string(self, value: str, s: Schema, name: str) -> None:
        if s.max_length is not None and len(value) > s.max_length:
            unit = "byte" if s.max_length == 1 else "bytes"
            self.add(name, "FieldValueTooLong", f"Too long: may not be more than {s.max_length} {unit}")
        elif s.min_length is not None and len(value) < s.min_length:
            self.invalid(name, value, f"{name} in body should be at least {s.min_length} chars long")
        elif s.pattern_re is not None and not s.pattern_re.search(value):
            self.invalid(name, value, f"{name} in body should match '{s.pattern}'")
        fmt = s.format.replace("-", "")
        check = CHECKED_FORMATS.get(fmt)
        if check is not None and not check(value):
            detail = f"{name} in body must be of type {s.format}: {go_quote(value)}"
            self.add(name, "FieldValueTypeInvalid", f"Invalid value: {go_quote(value)}: {detail}")

    def number(self, value: float, s: Schema, name: str) -> None:
        as_int = isinstance(value, int)

        def bound(b: float) -> str:
            return str(int(b)) if as_int else go_float(float(b))

        if s.multiple_of is not None and s.multiple_of > 0:
            factor = int(s.multiple_of) if as_int else s.multiple_of
            if factor and (value % factor if as_int else not (value / factor).is_integer()):
                self.invalid(name, value, f"{name} in body should be a multiple of {bound(s.multiple_of)}")
        if s.minimum is not None:
            low = int(s.minimum) if as_int else s.minimum
            if value < low or (s.exclusive_minimum and value == low):
                word = "greater than" if s.exclusive_minimum else "greater than or equal to"
                self.invalid(name, value, f"{name} in body should be {word} {bound(s.minimum)}")
        if s.maximum is not None:
            high = int(s.maximum) if as_int else s.maximum
            if value > high or (s.exclusive_maximum and value == high):
                word = "less than" if s.exclusive_maximum else "less than or equal to"
                self.invalid(name, value, f"{name} in body should be {word} {bound(s.maximum)}")

    def array(self, value: list[Any], s: Schema, name: str, old: Any) -> None:
        if s.items is not None:
            for i, item in enumerate(value):
                self.node(item, s.items, f"{name}[{i}]", _MISSING)
        if s.min_items is not None and len(value) < s.min_items:
            self.invalid(name, len(value), f"{name} in body should have at least {s.min_items} items")
        if s.max_items is not None and len(value) > s.max_items:
            unit = "item" if s.max_items == 1 else "items"
            message = f"Too many: {len(value)}: must have at most {s.max_items} {unit}"
            self.add(name, "FieldValueTooMany", message)

    def enum(self, value: Any, s: Schema, name: str) -> None:
        if s.enum is None or any(_enum_match(value, allowed) for allowed in s.enum):
            return
        allowed = ", ".join(
            go_quote(a if isinstance(a, str) else orjson.dumps(a, option=orjson.OPT_SORT_KEYS).decode())
            for a in s.enum
        )
        value_text = "null" if value is None else go_value(value)
        message = f"Unsupported value: {value_text}: supported values: {allowed}"
        self.add(name, "FieldValueNotSupported", message)

    def object(self, value: dict[str, Any], s: Schema, name: str, old: Any) -> None:
        size = len(value)
        if s.min_properties is not None and size < s.min_properties:
            self.invalid(name, size, f"{name} in body should have at least {s.min_properties} properties")
        if s.max_properties is not None and size > s.max_properties:
            unit = "item" if s.max_properties == 1 else "items"
            message = f"Too many: {size}: must have at most {s.max_properties} {unit}"
            self.add(name, "FieldValueTooMany", message)
        old_map = old if isinstance(old, dict) else {}
        prefix = f"{name}." if name else ""
        if s.additional is not None:
            for key, v in value.items():
                if key not in s.properties:
                    self.node(v, s.additional, prefix + key, old_map.get(key, _MISSING))
        for key, prop in s.properties.items():
            if key in value:
                self.node(value[key], prop, prefix + key, old_map.get(key, _MISSING))
        for key in s.required:
            if key not in value:
                self.add(f"{name}.{key}", "FieldValueRequired", "Required value")


# go-openapi's default format registry: a format outside it is dropped from the schema by
# kube-apiserver, so it changes nothing (not even type errors).
_SUPPORTED_FORMATS = frozenset(
    [
        "bsonobjectid",
        "uri",
        "email",
        "hostname",
        "ipv4",
        "ipv6",
        "cidr",
        "mac",
        "uuid",
        "uuid3",
        "uuid4",
        "uuid5",
        "isbn",
        "isbn10",
        "isbn13",
        "creditcard",
        "ssn",
        "hexcolor",
        "rgbcolor",
        "byte",
        "password",
        "date",
        "duration",
        "datetime",
    ]
)


def validate(value: Any, schema: Schema, *, prefix: str = "", old: Any = _MISSING) -> list[Cause]:
    """The causes ``value`` breaks ``schema`` with, in kube-apiserver's wording (see module doc).

    ``prefix`` names the validated value in field paths (``status`` when only the status is
    checked, whose messages then name fields relative to it, as the real server's do); ``old`` is
    the previous value on an update (for ratcheting), left out on create.
    """
    walk = _Walk(prefix)
    walk.node(value, schema, "", old)
    return walk.causes


def no_old() -> Any:
    """The ``old`` argument meaning "a create: nothing to ratchet against"."""
    return _MISSING
