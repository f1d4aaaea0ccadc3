"""How a failed reconcile is classified: terminal (do not retry), a panic (a bug), or an error.

controller-runtime's rules, and how they map onto Python:

* **Terminal** (controller-runtime's ``reconcile.TerminalError``): the reconciler raises
  :class:`TerminalError` (or an exception whose ``__cause__`` chain holds one, as Go's
  ``errors.Is`` unwraps ``%w``) to say that retrying cannot help until the object changes (a bad
  spec the user must fix). It is not requeued, the error policy is not consulted, the object's
  failure backoff is forgotten, and the next change of the object (or of a related object)
  reconciles it again. Counted in ``controller_runtime_terminal_reconcile_errors_total`` *and*,
  as controller-runtime does, as an error.
* **Panic**: Go separates errors a reconciler returns from panics (a nil dereference, an index out
  of range, a failed type assertion, an explicit ``panic``), which controller-runtime recovers
  (``RecoverPanic``, on by default since v0.19), counts in
  ``controller_runtime_reconcile_panics_total`` and then treats as an error: counted as one and
  retried with backoff. Python raises exceptions for both, so a panic here is an exception of the
  types Python raises for programming mistakes (:data:`PANIC_TYPES`: ``AssertionError``,
  ``AttributeError``, ``LookupError`` (``KeyError``, ``IndexError``), ``NameError``,
  ``TypeError``, ``ArithmeticError``, ``NotImplementedError``, ``RecursionError``), and a
  reconcile that returns something other than an ``Action``. It is retried like an error (the
  error policy decides, backoff by default).
* **Error**: everything else (API errors, timeouts, ``OSError``, ``ValueError``,
  ``RuntimeError``, the reconciler's own exception types): an error the reconciler chose to
  raise, retried through the error policy.

Pitfall: ``obj["spec"]["field"]`` on an object without that field raises ``KeyError``, a panic.
Read optional fields with ``.get()``, and raise :class:`TerminalError` or an exception type of
your own for failures you expect.
"""

from __future__ import annotations

from typing import Final

from kube_runtime.client.errors import KubeError

__all__ = ["PANIC_TYPES", "StrayCancellation", "TerminalError", "is_panic", "is_terminal"]

#: The exception types that count as a panic (see the module docs).
PANIC_TYPES: Final[tuple[type[BaseException], ...]] = (
    AssertionError,
    AttributeError,
    LookupError,
    NameError,
    TypeError,
    ArithmeticError,
    NotImplementedError,
    RecursionError,
)

#: How deep ``__cause__`` chains are searched for a TerminalError.
_MAX_CAUSES: Final = 16


class TerminalError(Exception):
    """Raise it from a reconciler when retrying cannot help until the object changes: the
    object is not requeued (see the module docs). ``raise TerminalError("...") from error`` keeps
    the underlying error as its cause."""


class StrayCancellation(Exception):
    """The reconcile raised ``asyncio.CancelledError`` although nothing cancelled it: it awaited a
    future or task that was cancelled elsewhere (a shared lookup another caller cancelled).

    asyncio delivers that cancellation to every awaiter, but it is the awaited work's failure, not
    a stop of this reconcile, so it is classified as an error (retried through the error policy)
    instead of ending the worker, which would end the whole controller's result stream. The
    original ``CancelledError`` is the ``__cause__``. A real cancellation (shutdown, the
    reconcile's timeout) is never wrapped."""


def is_terminal(error: BaseException) -> bool:
    """Whether ``error`` is, or was raised from (``__cause__``), a :class:`TerminalError`."""
    current: BaseException | None = error
    for _ in range(_MAX_CAUSES):
        if current is None:
            return False
        if isinstance(current, TerminalError):
            return True
        current = current.__cause__
    return False


def is_panic(error: BaseException) -> bool:
    """Whether ``error`` counts as a panic: one of :data:`PANIC_TYPES` that is neither terminal
    nor a client error (:class:`~kube_runtime.client.errors.KubeError`)."""
    return isinstance(error, PANIC_TYPES) and not isinstance(error, KubeError) and not is_terminal(error)
