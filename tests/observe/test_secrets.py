"""Credentials never reach logs, spans, exception text or reprs.

Distinctive tokens are planted (a static token in a kubeconfig, an exec-credential token, a token
file), failing API calls are driven through the Client (401, 403, 500, a refused connection), a
Controller whose reconcile raises after an API error runs with an error_policy that fails too,
and user code logs the exceptions (structlog and stdlib ``log.exception``). This happens under
every log format and level the package offers, with spans going to an in-memory exporter; then
every captured log line, span (attributes, events, status, recorded exception stack text),
exception ``str``/``repr`` and the repr of the client/config/credential objects is scanned for
each token and for its first 8 characters.

The leak this pins: structlog's ``dict_tracebacks`` (the JSON format) rendered every frame's local
variables, among them the client's ``headers`` holding ``Authorization: Bearer ...``.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from kube_runtime.client import Api, ApiError, ApiResource, Client, ClientConfig, KubeError, RetryPolicy
from kube_runtime.client.auth import ExecPlugin
from kube_runtime.client.redact import REDACTED, redact, remember_secret
from kube_runtime.controller import Action, Controller, ReconcilerFailed
from kube_runtime.observe.logging import configure_logging
from kube_runtime.observe.tracing import instrument
from kube_runtime.testing import ApiServer

CONFIG_MAP = ApiResource.builtin("ConfigMap")
STATIC = "StAtIcTk" + secrets.token_hex(12)
EXEC = "ExEcToKn" + secrets.token_hex(12)
FILE = "FiLeToKn" + secrets.token_hex(12)
TOKENS = (STATIC, EXEC, FILE)

user_log = structlog.get_logger("user.controller")
stdlib_log = logging.getLogger("user.controller.stdlib")


def exec_plugin(token: str) -> ExecPlugin:
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": token},
    }
    return ExecPlugin(sys.executable, ["-c", f"print({json.dumps(json.dumps(credential))})"])


def leaks(text: str) -> list[str]:
    return [token[:8] for token in TOKENS if token[:8] in text]


class Evidence:
    """Everything that must not show a token."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def error(self, exc: BaseException) -> None:
        while exc is not None:
            self.texts += [str(exc), repr(exc)]
            exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]

    def objects(self, *objs: Any) -> None:
        self.texts += [repr(obj) for obj in objs] + [str(obj) for obj in objs]


async def failing_calls(server: ApiServer, tmp_path: Path, evidence: Evidence) -> None:
    """401 (exec and token-file tokens the server does not know), 403 and 500 (static token from
    a kubeconfig), a refused connection; each logged by user code."""
    static = ClientConfig.from_kubeconfig(server.kubeconfig_path)
    assert static.token == STATIC
    token_file = tmp_path / "token"
    token_file.write_text(FILE + "\n")
    configs = [
        static,
        ClientConfig(server=server.url, ca_data=server.ca_pem, exec_plugin=exec_plugin(EXEC)),
        ClientConfig(server=server.url, ca_data=server.ca_pem, token_file=str(token_file)),
        ClientConfig(server="https://127.0.0.1:1", token=STATIC),  # nothing listens on port 1
    ]
    for config in configs:
        async with Client(config, retry_policy=RetryPolicy.never()) as client:
            api = Api(client, CONFIG_MAP, "default")
            for code in (403, 500, None):
                if code is not None:
                    server.faults.fail_next(1, code)
                try:
                    await api.get("missing")
                except KubeError as exc:
                    user_log.exception("get failed", client=client, config=config)
                    stdlib_log.exception("get failed: %r", exc)
                    evidence.error(exc)
                else:  # pragma: no cover - every call above fails
                    raise AssertionError("the call succeeded")
            authenticator = client.authenticator
            assert authenticator is not None
            evidence.objects(client, config, authenticator, authenticator.current, authenticator.source)
        server.faults.reset()


async def failing_controller(server: ApiServer, evidence: Evidence) -> None:
    """A reconcile that raises after an API error, and an error_policy that fails as well."""
    client = Client(ClientConfig.from_kubeconfig(server.kubeconfig_path), retry_policy=RetryPolicy.never())
    async with client:
        api = Api(client, CONFIG_MAP, "default")
        await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {}})

        async def reconcile(obj: dict[str, Any], _ctx: None) -> Action:
            try:
                await api.get("cm-missing")  # 404
            except ApiError:
                user_log.exception("reconcile saw an API error")
                raise
            return Action.await_change()  # pragma: no cover

        def error_policy(obj: dict[str, Any], error: Exception, _ctx: None) -> Action:
            raise RuntimeError("error_policy broke too") from error

        controller = Controller(api, name="leaky")
        with anyio.fail_after(30):
            async with controller.run(reconcile, error_policy, None) as results:
                async for item in results:
                    if isinstance(item, ReconcilerFailed):
                        evidence.error(item.error)
                        evidence.texts += [str(item), repr(item)]
                        break
        evidence.objects(client, client.config)


@pytest.mark.parametrize("fmt", ["json", "console"])
@pytest.mark.parametrize("level", ["trace", "debug", "info", "warning", "error", "critical"])
async def test_no_token_in_logs_spans_errors_or_reprs(
    fmt: Any, level: str, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    stream = io.StringIO()
    configure_logging(level, fmt=fmt, stream=stream)
    evidence = Evidence()
    try:
        async with ApiServer(token=STATIC) as server:
            await failing_calls(server, tmp_path, evidence)
            await failing_controller(server, evidence)
    finally:
        configure_logging("warning", stream=io.StringIO())

    output = stream.getvalue()
    shows_errors = level != "critical"  # log.exception() is at error level
    if shows_errors:
        assert "get failed" in output
        assert "error_policy failed" in output
        assert "Traceback" in output or '"exception"' in output  # the tracebacks were rendered
    assert not leaks(output), [line for line in output.splitlines() if leaks(line)][:3]
    # The root fixes hold on their own: nothing needed the last-line redaction, and no rendered
    # traceback carries frame locals.
    assert REDACTED not in output
    if fmt == "json":
        records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        frames = [
            frame
            for record in records
            for exc in record.get("exception") or ()
            for frame in exc.get("frames") or ()
        ]
        assert frames or not shows_errors
        assert not [frame for frame in frames if "locals" in frame]

    finished = spans.get_finished_spans()
    assert any(span.name == "reconciling object" for span in finished)
    assert any(span.events for span in finished)
    for span in finished:
        parts = [span.name, repr(dict(span.attributes or {})), str(span.status.description)]
        for event in span.events:
            parts += [event.name, repr(dict(event.attributes or {}))]
        assert not leaks(" ".join(parts)), span.to_json()

    assert evidence.texts
    assert not [text for text in evidence.texts if leaks(text)]


def test_redact_replaces_bearer_tokens_and_remembered_secrets() -> None:
    remember_secret("tiny")  # too short to remember: it would mangle unrelated text
    remember_secret("RmBrDsEcReT-123456")
    text = "x RmBrDsEcReT-123456 (b'authorization', b'Bearer abc.def-ghi') authorization: bearer Zz9 tiny"
    assert redact(text) == (
        "x <redacted> (b'authorization', b'Bearer <redacted>') authorization: bearer <redacted> tiny"
    )


def test_a_library_debug_line_with_a_header_is_redacted(tmp_path: Path) -> None:
    stream = io.StringIO()
    try:
        for fmt in ("json", "console"):
            configure_logging("trace", fmt=fmt, stream=stream)  # type: ignore[arg-type]
            logging.getLogger("hpack.hpack").debug("Adding %s=%s", b"authorization", f"Bearer {STATIC}")
    finally:
        configure_logging("warning", stream=io.StringIO())
    assert stream.getvalue().count("Bearer <redacted>") == 2
    assert not leaks(stream.getvalue())


def test_config_repr_hides_the_proxy_password() -> None:
    config = ClientConfig(server="https://k:6443", proxy_url="http://me:PrOxYpAsSwOrD@proxy:3128")
    assert "PrOxYpAsSwOrD" not in repr(config)
    assert "http://me:<hidden>@proxy:3128" in repr(config)


async def test_an_exception_quoting_a_token_is_redacted_on_spans(spans: InMemorySpanExporter) -> None:
    """Log lines were redacted, spans were not: the reconcile span's status and exception event
    (message and stack trace), and ``instrument``'s spans, carried the error's text verbatim."""
    token = "SpAnLeAk" + secrets.token_hex(12)
    remember_secret(token)

    @instrument("call_upstream")
    async def call_upstream() -> None:
        raise RuntimeError(f"upstream said: Authorization: Bearer {token}; token {token} rejected")

    async with ApiServer() as server:
        api = Api(server.client, CONFIG_MAP, "default")
        await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}})

        async def reconcile(obj: dict[str, Any], _ctx: None) -> Action:
            await call_upstream()
            return Action.await_change()  # pragma: no cover

        with anyio.fail_after(30):
            async with Controller(api, name="spans").run(reconcile, None, None) as results:
                async for item in results:
                    assert isinstance(item, ReconcilerFailed)
                    break
    finished = spans.get_finished_spans()
    assert {span.name for span in finished} >= {"reconciling object", "call_upstream"}
    for span in finished:
        texts = [str(span.status.description)]
        for event in span.events:
            texts += [str(value) for value in (event.attributes or {}).values()]
        assert not [text for text in texts if token in text or token[:8] in text], span.name
        if span.name in ("reconciling object", "call_upstream"):
            assert span.status.status_code is StatusCode.ERROR
            [event] = span.events
            assert event.name == "exception"
            assert event.attributes is not None
            assert event.attributes["exception.type"] == "RuntimeError"
            assert (span.attributes or {})["error.type"] == "RuntimeError"
            assert REDACTED in str(event.attributes["exception.message"])
            assert "Traceback" in str(event.attributes["exception.stacktrace"])
