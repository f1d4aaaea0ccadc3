"""Loading ClientConfig from kubeconfig files and service-account directories written to tmp dirs."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from kube_runtime.client import ClientConfig, ConfigError, ExecPlugin, StaticToken, TokenFile
from tests.client.conftest import Pki
from tests.client.plugins import exec_env, write_kubeconfig, write_plugin

pytestmark = pytest.mark.usefixtures("anyio_backend")


def test_token_user(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "config", user={"token": "s3cret"}, namespace="team-a")
    config = ClientConfig.from_kubeconfig(path)
    assert config.server == "https://127.0.0.1:6443"
    assert config.namespace == "team-a"
    assert config.context == "test"
    source = config.credential_source()
    assert isinstance(source, StaticToken)
    assert "s3cret" not in repr(config)


def test_token_file_user_wins_over_token_and_is_resolved_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("from-file\n")
    path = write_kubeconfig(tmp_path / "config", user={"token": "inline", "tokenFile": "tok"})
    config = ClientConfig.from_kubeconfig(path)
    assert config.token_file == str(tmp_path / "tok")
    assert isinstance(config.credential_source(), TokenFile)


def test_exec_user(tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path)
    path = write_kubeconfig(
        tmp_path / "config",
        user={
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "./credential-plugin",
                "args": ["--flag"],
                "env": exec_env(tmp_path / "count"),
                "interactiveMode": "Never",
            }
        },
    )
    config = ClientConfig.from_kubeconfig(path)
    source = config.credential_source()
    assert isinstance(source, ExecPlugin)
    assert source.command == str(plugin)  # relative command with a separator: next to the kubeconfig
    assert source.args == ["--flag"]


def test_exec_v1alpha1_is_rejected(tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path / "config",
        user={"exec": {"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "x"}},
    )
    with pytest.raises(ConfigError, match="v1alpha1"):
        ClientConfig.from_kubeconfig(path)


def test_client_certificate_files_and_ca_data(tmp_path: Path, pki: Pki) -> None:
    path = write_kubeconfig(
        tmp_path / "config",
        user={"client-certificate": pki.path("client.crt"), "client-key": pki.path("client.key")},
        cluster={
            "certificate-authority-data": base64.b64encode(pki.ca_pem).decode(),
            "tls-server-name": "k8s",
        },
    )
    config = ClientConfig.from_kubeconfig(path)
    assert config.client_cert_file == pki.path("client.crt")
    assert config.client_key_file == pki.path("client.key")
    assert config.ca_data == pki.ca_pem
    assert config.tls_server_name == "k8s"
    assert config.credential_source() is None


def test_client_certificate_data_and_ca_file(tmp_path: Path, pki: Pki) -> None:
    path = write_kubeconfig(
        tmp_path / "config",
        user={
            "client-certificate-data": base64.b64encode(pki.client_cert_pem).decode(),
            "client-key-data": base64.b64encode(pki.client_key_pem).decode(),
        },
        cluster={"certificate-authority": pki.path("ca.crt")},
    )
    config = ClientConfig.from_kubeconfig(path)
    assert config.client_cert_data == pki.client_cert_pem
    assert config.client_key_data == pki.client_key_pem
    assert config.ca_file == pki.path("ca.crt")
    assert "PRIVATE KEY" not in repr(config)


def test_insecure_skip_tls_verify(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "config", cluster={"insecure-skip-tls-verify": True})
    assert ClientConfig.from_kubeconfig(path).insecure_skip_tls_verify


def test_context_override_and_unknown_context(tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path / "config",
        user={"token": "t"},
        extra_contexts=[
            {"name": "other", "context": {"cluster": "test-cluster", "user": "test-user", "namespace": "o"}}
        ],
    )
    assert ClientConfig.from_kubeconfig(path, context="other").namespace == "o"
    with pytest.raises(ConfigError, match="nope"):
        ClientConfig.from_kubeconfig(path, context="nope")


def test_context_naming_an_undefined_cluster_or_user_is_an_error(tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path / "config",
        user={"token": "t"},
        extra_contexts=[
            {"name": "no-user", "context": {"cluster": "test-cluster", "user": "ghost"}},
            {"name": "no-cluster", "context": {"cluster": "ghost-cluster", "user": "test-user"}},
            {"name": "empty", "context": {"user": "test-user"}},
        ],
    )
    with pytest.raises(ConfigError, match="no user named 'ghost'"):
        ClientConfig.from_kubeconfig(path, context="no-user")
    with pytest.raises(ConfigError, match="no cluster named 'ghost-cluster'"):
        ClientConfig.from_kubeconfig(path, context="no-cluster")
    with pytest.raises(ConfigError, match="names no cluster"):
        ClientConfig.from_kubeconfig(path, context="empty")


def test_no_current_context_is_an_error(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "config", current=None)
    with pytest.raises(ConfigError, match="current-context"):
        ClientConfig.from_kubeconfig(path)


def test_missing_and_broken_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        ClientConfig.from_kubeconfig(tmp_path / "absent")
    (tmp_path / "broken").write_text("clusters: [unclosed")
    with pytest.raises(ConfigError, match="cannot read"):
        ClientConfig.from_kubeconfig(tmp_path / "broken")


def test_several_files_merge_first_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = write_kubeconfig(tmp_path / "a", server="https://first:6443", user={"token": "one"})
    second_dir = tmp_path / "b"
    second_dir.mkdir()
    (second_dir / "tok").write_text("two")
    second = write_kubeconfig(
        second_dir / "config",
        server="https://second:6443",
        user={"tokenFile": "tok"},
        context_name="extra",
        current="extra",
    )
    # the "test-cluster" name defined in both: the first file's definition wins (client-go rule)
    doc = yaml.safe_load(second.read_text())
    doc["clusters"].append({"name": "test-cluster", "cluster": {"server": "https://shadowed:6443"}})
    second.write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("KUBECONFIG", f"{first}:{tmp_path / 'missing'}:{second}")
    config = ClientConfig.from_kubeconfig()
    assert config.context == "test"  # current-context of the first file that sets one
    assert config.server == "https://first:6443"
    other = ClientConfig.from_kubeconfig(context="extra")
    assert other.server == "https://second:6443"
    assert other.token_file == str(second_dir / "tok")  # relative to the file that defined the user


def _service_account(tmp_path: Path, pki: Pki) -> Path:
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("sa-token")
    (sa / "namespace").write_text("kube-system")
    (sa / "ca.crt").write_bytes(pki.ca_pem)
    return sa


def test_in_cluster(tmp_path: Path, pki: Pki) -> None:
    sa = _service_account(tmp_path, pki)
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    config = ClientConfig.in_cluster(str(sa), env)
    assert config.server == "https://10.96.0.1:443"
    assert config.namespace == "kube-system"
    assert config.ca_file == str(sa / "ca.crt")
    source = config.credential_source()
    assert isinstance(source, TokenFile)
    assert source.path == str(sa / "token")
    ipv6 = ClientConfig.in_cluster(
        str(sa), {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    )
    assert ipv6.server == "https://[fd00::1]:443"


def test_in_cluster_requires_env_and_token(tmp_path: Path, pki: Pki) -> None:
    sa = _service_account(tmp_path, pki)
    with pytest.raises(ConfigError, match="KUBERNETES_SERVICE_HOST"):
        ClientConfig.in_cluster(str(sa), {})
    with pytest.raises(ConfigError, match="token"):
        ClientConfig.in_cluster(
            str(tmp_path / "nothing"), {"KUBERNETES_SERVICE_HOST": "h", "KUBERNETES_SERVICE_PORT": "1"}
        )


async def test_infer_order(tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    sa = _service_account(tmp_path, pki)
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    write_kubeconfig(home / ".kube" / "config", server="https://home:6443")
    env_config = write_kubeconfig(tmp_path / "env-config", server="https://env:6443")
    explicit = write_kubeconfig(tmp_path / "explicit", server="https://explicit:6443")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.setenv("KUBECONFIG", str(env_config))

    assert (await ClientConfig.infer(explicit, service_account_dir=str(sa))).server == "https://explicit:6443"
    assert (await ClientConfig.infer(service_account_dir=str(sa))).server == "https://env:6443"
    monkeypatch.delenv("KUBECONFIG")
    in_cluster = await ClientConfig.infer(service_account_dir=str(sa))
    assert in_cluster.origin == "in-cluster"
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    assert (await ClientConfig.infer(service_account_dir=str(sa))).server == "https://home:6443"
    (home / ".kube" / "config").unlink()
    with pytest.raises(ConfigError, match="no cluster configuration"):
        await ClientConfig.infer(service_account_dir=str(sa))
