"""Credential sources and their refresh, on the virtual clock (exec plugins are real processes)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from kube_runtime.client import AuthenticationError, Authenticator, ExecPlugin, StaticToken, TokenFile
from kube_runtime.client.auth import Credentials, refresh_margin
from kube_runtime.testing.clock import virtual_clock_backend
from tests.client.conftest import Pki
from tests.client.plugins import plugin_calls, write_plugin

# tests/conftest.py marks async tests only after collection, so anyio would also run each one as a
# "[trio]" copy (on our fixture anyway) and drop other parametrizations; requesting the fixture
# explicitly avoids that.
pytestmark = pytest.mark.usefixtures("anyio_backend")


@pytest.fixture
def anyio_backend() -> Any:
    return virtual_clock_backend()


def _plugin(tmp_path: Path, **env: str) -> tuple[ExecPlugin, Path]:
    counter = tmp_path / "count"
    return ExecPlugin(str(write_plugin(tmp_path)), env={"PLUGIN_COUNTER": str(counter), **env}), counter


def test_refresh_margin_is_ten_percent_capped_at_a_minute() -> None:
    assert refresh_margin(3600) == 60
    assert refresh_margin(120) == pytest.approx(12)
    assert refresh_margin(-5) == 0


async def test_exec_credential_is_refreshed_before_it_expires(tmp_path: Path) -> None:
    plugin, counter = _plugin(tmp_path, PLUGIN_LIFETIME="600")
    auth = Authenticator(plugin)
    asked = anyio.current_time()
    wall_asked = time.time()
    first = await auth.credentials()
    answered = anyio.current_time()
    # The plugin is a real process: the wall clock moves while it runs, the virtual clock need not.
    plugin_run = time.time() - wall_asked
    assert first.token == "exec-token-1"
    assert first.expires_at is not None
    assert first.refresh_at is not None
    # the plugin stamps its wall-clock now + 600 s at one-second resolution, somewhere between asking
    # and answering; the expiry is then taken relative to the wall clock when the answer is read
    assert asked + 599 - plugin_run <= first.expires_at <= answered + 600.5
    # The margin is a tenth of the lifetime left when the answer is read (capped at a minute): just
    # under 600 s, less the stamp's truncation and however long the plugin took on a slow machine.
    assert refresh_margin(599 - plugin_run) <= first.expires_at - first.refresh_at <= 60

    await anyio.sleep(500)
    assert (await auth.credentials()) is first
    assert plugin_calls(counter) == 1

    await anyio.sleep(45)  # past the refresh point, before expiry
    second = await auth.credentials()
    assert second.token == "exec-token-2"
    assert plugin_calls(counter) == 2


async def test_exec_credential_without_expiry_is_kept_until_a_401(tmp_path: Path) -> None:
    plugin, counter = _plugin(tmp_path)
    auth = Authenticator(plugin)
    first = await auth.credentials()
    assert first.refresh_at is None
    await anyio.sleep(86400)
    assert (await auth.credentials()) is first
    fresh = await auth.reauthenticate(first)
    assert fresh.token == "exec-token-2"
    assert plugin_calls(counter) == 2


async def test_concurrent_401s_cause_one_refresh(tmp_path: Path) -> None:
    plugin, counter = _plugin(tmp_path)
    auth = Authenticator(plugin)
    stale = await auth.credentials()
    results: list[Credentials] = []

    async def reauth() -> None:
        results.append(await auth.reauthenticate(stale))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(reauth)
    assert {c.token for c in results} == {"exec-token-2"}
    assert plugin_calls(counter) == 2


async def test_concurrent_first_requests_run_the_plugin_once(tmp_path: Path) -> None:
    plugin, counter = _plugin(tmp_path, PLUGIN_LIFETIME="3600")
    auth = Authenticator(plugin)
    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(auth.credentials)
    assert plugin_calls(counter) == 1


async def test_failed_refresh_keeps_the_credential_until_it_expires(tmp_path: Path) -> None:
    plugin, counter = _plugin(tmp_path, PLUGIN_LIFETIME="600")
    auth = Authenticator(plugin, retry_interval=10)
    first = await auth.credentials()
    plugin.env["PLUGIN_FAIL"] = "1"
    await anyio.sleep(550)
    assert (await auth.credentials()) is first  # refresh failed, still valid
    assert (await auth.credentials()) is first  # no new attempt before retry_interval
    assert plugin_calls(counter) == 2
    await anyio.sleep(11)
    assert (await auth.credentials()) is first
    assert plugin_calls(counter) == 3
    await anyio.sleep(60)  # now expired
    with pytest.raises(AuthenticationError, match="exited with 3: plugin is broken today"):
        await auth.credentials()


async def test_exec_plugin_client_certificate(tmp_path: Path, pki: Pki) -> None:
    plugin, _ = _plugin(tmp_path, PLUGIN_CERT=pki.path("client.crt"), PLUGIN_KEY=pki.path("client.key"))
    credentials = await Authenticator(plugin).credentials()
    assert credentials.token is None
    assert credentials.client_cert_pem == pki.client_cert_pem
    assert credentials.client_key_pem == pki.client_key_pem
    assert "PRIVATE" not in repr(credentials)


BAD_OUTPUTS = [
    ("echo not-json", "no ExecCredential JSON"),
    ('echo \'{"kind": "ExecCredential"}\'', "without status"),
    ("echo '{\"status\": {}}'", "neither a token nor"),
    ('echo \'{"status": {"token": "t", "expirationTimestamp": "soon"}}\'', "bad expirationTimestamp"),
]


async def test_bad_plugin_output(tmp_path: Path) -> None:
    for number, (script, message) in enumerate(BAD_OUTPUTS):
        path = tmp_path / f"plugin{number}.sh"
        path.write_text(f"#!/bin/sh\n{script}\n")
        path.chmod(0o755)
        with pytest.raises(AuthenticationError, match=message):
            await ExecPlugin(str(path)).fetch()


async def test_missing_plugin_names_the_install_hint(tmp_path: Path) -> None:
    plugin = ExecPlugin(str(tmp_path / "absent"), install_hint="install it with brew")
    with pytest.raises(AuthenticationError, match="install it with brew"):
        await plugin.fetch()


async def test_token_file_is_reread_periodically(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("one\n")
    auth = Authenticator(TokenFile(token, reread_interval=60))
    assert (await auth.credentials()).token == "one"
    token.write_text("two")
    await anyio.sleep(30)
    assert (await auth.credentials()).token == "one"
    await anyio.sleep(31)
    assert (await auth.credentials()).token == "two"


async def test_token_file_vanishing_keeps_the_last_token(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("one")
    auth = Authenticator(TokenFile(token, reread_interval=60))
    await auth.credentials()
    token.unlink()
    await anyio.sleep(61)
    assert (await auth.credentials()).token == "one"
    with pytest.raises(AuthenticationError, match="cannot read token file"):
        await Authenticator(TokenFile(token)).credentials()


async def test_empty_token_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("  \n")
    with pytest.raises(AuthenticationError, match="empty"):
        await TokenFile(tmp_path / "token").fetch()


async def test_static_token_never_refreshes() -> None:
    auth = Authenticator(StaticToken("abc"))
    first = await auth.credentials()
    await anyio.sleep(10**6)
    assert (await auth.credentials()) is first


async def test_a_refresh_takes_no_virtual_time_while_other_timers_run(tmp_path: Path) -> None:
    """The plugin runs in a thread. The virtual clock used to jump from timer to timer meanwhile
    (with a 60 s ticker running, days of virtual time per 50 ms of plugin), so a credential that
    was still valid expired during a failed refresh and the request failed."""
    plugin, _ = _plugin(tmp_path, PLUGIN_LIFETIME="3600")
    auth = Authenticator(plugin, retry_interval=10)
    ticks = 0

    async def ticker() -> None:  # like the embedded server's bookmark ticker
        nonlocal ticks
        while True:
            await anyio.sleep(60)
            ticks += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        first = await auth.credentials()
        plugin.env["PLUGIN_FAIL"] = "1"
        await anyio.sleep(3550)  # inside the refresh margin, before expiry
        before, ticked = anyio.current_time(), ticks
        assert (await auth.credentials()) is first  # the refresh failed; still valid
        assert (anyio.current_time(), ticks) == (before, ticked)
        tg.cancel_scope.cancel()
