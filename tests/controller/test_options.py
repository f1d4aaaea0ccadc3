"""ControllerOptions: the controller flags the Helm chart passes beyond ServerOptions."""

from __future__ import annotations

import argparse

import pytest

from kube_runtime.controller import DEFAULT_CONCURRENCY, ControllerOptions
from kube_runtime.controller.shutdown import DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT


def parse(argv: list[str], **kwargs: str | None) -> ControllerOptions:
    parser = argparse.ArgumentParser()
    ControllerOptions.add_arguments(parser, **kwargs)  # type: ignore[arg-type]
    return ControllerOptions.from_arguments(parser.parse_args(argv))


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    options = parse([], leader_election_id="configmapgen")
    assert options == ControllerOptions(DEFAULT_CONCURRENCY, None, False, "configmapgen", None)
    assert options.lease_namespace() == "default"
    monkeypatch.setenv("POD_NAMESPACE", "ops")  # the chart sets it from the downward API
    assert options.lease_namespace() == "ops"


def test_the_flags_the_chart_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "ignored")
    options = parse(
        [
            "--concurrency=8",
            "--namespace=apps",
            "--leader-elect",
            "--leader-election-id=release-kube-runtime-controller-leader",
            "--leader-election-namespace=kube-system",
        ],
        leader_election_id="configmapgen",
    )
    assert options == ControllerOptions(
        8, "apps", True, "release-kube-runtime-controller-leader", "kube-system"
    )
    assert options.lease_namespace() == "kube-system"
    assert parse(["--namespace="]).namespace is None  # empty: all namespaces
    assert parse(["--concurrency=0"]).concurrency == 0  # unbounded


def test_without_a_lease_name_leader_election_flags_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """A process that cannot elect must not silently accept --leader-elect."""
    assert parse([]).leader_election_id is None
    with pytest.raises(SystemExit):
        parse(["--leader-elect"])
    assert "unrecognized arguments: --leader-elect" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["-1", "many"])
def test_bad_concurrency_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    ControllerOptions.add_arguments(parser)
    with pytest.raises(SystemExit) as exited:
        parser.parse_args([f"--concurrency={value}"])
    assert exited.value.code == 2
    assert "--concurrency" in capsys.readouterr().err


def test_constructed_options_are_validated() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        ControllerOptions(concurrency=-1)
    with pytest.raises(ValueError, match="leader_election_id"):
        ControllerOptions(leader_elect=True)


@pytest.mark.parametrize(
    ("value", "expected"), [("25", 25.0), ("7.5s", 7.5), ("0", 0.0), ("-1", None), ("-1s", None)]
)
def test_graceful_shutdown_timeout_flag(value: str, expected: float | None) -> None:
    assert parse([]).graceful_shutdown_timeout == DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT == 25
    assert parse([f"--graceful-shutdown-timeout={value}"]).graceful_shutdown_timeout == expected


@pytest.mark.parametrize("value", ["soon", "inf", "nan"])
def test_bad_graceful_shutdown_timeout_is_a_usage_error(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse([f"--graceful-shutdown-timeout={value}"])
    assert "--graceful-shutdown-timeout" in capsys.readouterr().err
    with pytest.raises(ValueError, match="graceful_shutdown_timeout"):
        ControllerOptions(graceful_shutdown_timeout=-2)


@pytest.mark.parametrize(("value", "expected"), [("30", 30.0), ("2.5s", 2.5), ("0", None), ("-1", None)])
def test_reconcile_timeout_flag(value: str, expected: float | None) -> None:
    assert parse([]).reconcile_timeout is None  # controller-runtime's default: no timeout
    assert parse([f"--reconcile-timeout={value}"]).reconcile_timeout == expected


def test_bad_reconcile_timeout_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(["--reconcile-timeout=later"])
    assert "--reconcile-timeout" in capsys.readouterr().err
    with pytest.raises(ValueError, match="reconcile_timeout"):
        ControllerOptions(reconcile_timeout=0)


def test_leader_election_warmup_flag() -> None:
    assert not parse([], leader_election_id="configmapgen").leader_election_warmup
    options = parse(["--leader-elect", "--leader-election-warmup"], leader_election_id="configmapgen")
    assert options.leader_elect
    assert options.leader_election_warmup
