"""kube-apiserver's ObjectMeta rules beyond the name: label keys and values, annotation keys and total
size, finalizer names, owner references. Every kind, custom resources included, is checked.

Guarantee: an object kube-apiserver refuses for its metadata is refused here with 422, the same field
paths and cause reasons (``FieldValueInvalid``, ``FieldValueTooLong``) and messages close to
kube-apiserver's. Pitfall: only what a controller commonly gets wrong is covered (a label value from
an object name longer than 63 characters, a finalizer without a domain, an owner reference without a
uid, two controllers); not, say, generateName's suffix rules.
"""

from __future__ import annotations

import re
from typing import Any

from kube_runtime.testing.apiserver.names import is_subdomain

__all__ = ["ANNOTATIONS_MAX_BYTES", "meta_causes"]

#: A cause: (field path, reason, message).
Cause = tuple[str, str, str]

_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_QUALIFIED_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation "
    "is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
    "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
#: kube-apiserver's bound on the annotations of one object (keys and values together).
ANNOTATIONS_MAX_BYTES = 256 * 1024
#: Finalizer names kube-apiserver accepts without a domain.
_STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _qualified_name_problems(key: str) -> list[str]:
    """Why ``key`` is not a qualified name (``[prefix/]name``); empty when it is one."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or "/" in prefix):
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start "
            "and end with an alphanumeric character with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"
        ]
    problems: list[str] = []
    if slash and not is_subdomain(prefix):
        problems.append("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumerics")
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    elif not _NAME.fullmatch(name):
        problems.append(_QUALIFIED_MSG)
    return problems


def _invalid(field: str, value: str, problem: str) -> Cause:
    return (field, "FieldValueInvalid", f"Invalid value: {_quote(value)}: {problem}")


def _labels(labels: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    for key, value in labels.items():
        causes += [_invalid("metadata.labels", key, p) for p in _qualified_name_problems(key)]
        if not isinstance(value, str):
            continue
        if len(value) > 63:
            causes.append(_invalid("metadata.labels", value, "must be no more than 63 characters"))
        elif value and not _NAME.fullmatch(value):
            causes.append(_invalid("metadata.labels", value, _LABEL_VALUE_MSG))
    return causes


def _annotations(annotations: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    size = 0
    for key, value in annotations.items():
        causes += [_invalid("metadata.annotations", key, p) for p in _qualified_name_problems(key.lower())]
        size += len(key.encode()) + (len(value.encode()) if isinstance(value, str) else 0)
    if size > ANNOTATIONS_MAX_BYTES:
        causes.append(
            (
                "metadata.annotations",
                "FieldValueTooLong",
                f"Too long: may not be more than {ANNOTATIONS_MAX_BYTES} bytes",
            )
        )
    return causes


def _finalizers(finalizers: list[Any]) -> list[Cause]:
    causes: list[Cause] = []
    for index, finalizer in enumerate(finalizers):
        if not isinstance(finalizer, str):
            continue
        field = f"metadata.finalizers[{index}]"
        causes += [_invalid(field, finalizer, p) for p in _qualified_name_problems(finalizer)]
        if "/" not in finalizer and finalizer not in _STANDARD_FINALIZERS:
            problem = "name is neither a standard finalizer name nor is it fully qualified"
            causes.append(_invalid(field, finalizer, problem))
    return causes


def _owner_references(references: list[Any]) -> list[Cause]:
    causes: list[Cause] = []
    controllers: list[str] = []
    for reference in references:
        if not isinstance(reference, dict):
            causes.append(
                ("metadata.ownerReferences", "FieldValueInvalid", "Invalid value: must be an object")
            )
            continue
        for key in ("apiVersion", "kind", "name", "uid"):
            if not reference.get(key):
                causes.append(_invalid(f"metadata.ownerReferences.{key}", "", f"{key} must not be empty"))
        if reference.get("controller") is True:
            controllers.append(f"{reference.get('kind')}/{reference.get('name')}")
    if len(controllers) > 1:
        causes.append(
            (
                "metadata.ownerReferences",
                "FieldValueInvalid",
                "Invalid value: []v1.OwnerReference: Only one reference can have Controller set to true. "
                f'Found "true" in references for {" and ".join(controllers)}',
            )
        )
    return causes


def meta_causes(meta: dict[str, Any]) -> list[Cause]:
    """Every rule ``meta`` breaks (beyond its name, checked with the kind's name rule)."""
    causes: list[Cause] = []
    labels = meta.get("labels")
    if isinstance(labels, dict):
        causes += _labels(labels)
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        causes += _annotations(annotations)
    finalizers = meta.get("finalizers")
    if isinstance(finalizers, list):
        causes += _finalizers(finalizers)
    references = meta.get("ownerReferences")
    if isinstance(references, list):
        causes += _owner_references(references)
    return causes
