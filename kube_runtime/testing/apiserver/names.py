"""Object name rules of kube-apiserver: RFC 1123 labels and subdomains, and their error messages.

Guarantee: the messages are kube-apiserver's wording (clients and tests match on them). Pitfall: these
check names only; label keys and values follow other rules (see selectors.py).
"""

from __future__ import annotations

__all__ = ["LABEL_MSG", "SUBDOMAIN_MSG", "is_label", "is_subdomain"]

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


def is_subdomain(name: str) -> bool:
    """A DNS subdomain as Kubernetes checks it (RFC 1123): dot-separated parts of lower-case
    alphanumerics and '-', alphanumeric at both ends, at most 253 characters in all. Unlike a
    label, a part has no length limit of its own (a 200-character ConfigMap name is valid)."""
    if not name or len(name) > 253:
        return False
    return all(_is_label_chars(part) for part in name.split("."))


def is_label(name: str) -> bool:
    """A DNS label (RFC 1123): lower-case alphanumerics and '-', at most 63, alphanumeric at both ends."""
    return len(name) <= 63 and _is_label_chars(name)


def _is_label_chars(name: str) -> bool:
    """Lower-case alphanumerics and '-', alphanumeric at both ends (no length limit)."""
    if not name:
        return False
    if not (name[0].isalnum() and name[-1].isalnum()):
        return False
    return all((c.isascii() and (c.islower() or c.isdigit())) or c == "-" for c in name)
