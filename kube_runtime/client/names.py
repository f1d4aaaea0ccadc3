"""Kubernetes' name rules, checked on the client side before a request (so a bad name fails with
a clear error at construction, not with a 422 on every write in production).

The rules are apimachinery's ``IsDNS1123Subdomain`` and ``IsQualifiedName``: what the API server
validates object names, finalizers, label keys and an Event's ``reportingController`` with.
"""

from __future__ import annotations

import re

__all__ = ["dns_subdomain_from", "is_dns_subdomain", "is_qualified_name"]

_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NOT_IN_SUBDOMAIN = re.compile(r"[^a-z0-9.-]")
_NAME_PART = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


def is_dns_subdomain(value: str) -> bool:
    """Lower-case alphanumerics, '-' and '.', alphanumeric at both ends of each dot-separated
    part, at most 253 characters (an object name, a qualified name's prefix)."""
    return len(value) <= 253 and _DNS_SUBDOMAIN.fullmatch(value) is not None


def is_qualified_name(value: str) -> bool:
    """An optional DNS subdomain prefix and '/', then a name of at most 63 alphanumerics, '-',
    '_' and '.', alphanumeric at both ends (``example.com/cleanup``, ``my-controller``)."""
    prefix, slash, name = value.rpartition("/")
    if slash and (not prefix or not is_dns_subdomain(prefix)):
        return False
    return _NAME_PART.fullmatch(name) is not None


def dns_subdomain_from(value: str, max_length: int = 253) -> str:
    """A DNS subdomain of at most ``max_length`` characters made from ``value``: lower-cased,
    every other character as '-', cut to length, each part trimmed to alphanumeric ends and empty
    parts dropped. ``""`` when nothing of ``value`` is left. Different values may give the same
    result: add something unique where the result must be."""
    text = _NOT_IN_SUBDOMAIN.sub("-", value.lower())[:max_length]
    return ".".join(part for part in (part.strip("-") for part in text.split(".")) if part)
