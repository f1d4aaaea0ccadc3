"""The serving pair rotated while an API server calls our webhooks: concurrent writes go through the
validating and mutating webhooks while the files are replaced three times (same CA, as
cert-manager renews), and no write fails. Runs against the embedded server and the real
kube-apiserver (envtest)."""

from __future__ import annotations

import ssl
from pathlib import Path

import anyio
import httpx
from cryptography import x509

from tests.webhooks.test_apiserver_calls import envtest_kubeconfig, http, webhooks_installed
from tests.webhooks.test_server import handshake_serial

__all__ = ["envtest_kubeconfig", "http"]  # fixtures shared with test_apiserver_calls

WRITERS = 4
ROTATIONS = 3
PER_ROUND = 3  # writes each writer completes at every certificate generation


async def test_rotating_the_pair_while_the_api_server_calls_fails_no_write(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    async with webhooks_installed(http, tmp_path) as setup:
        certificate = setup.server.certificate
        failures: list[str] = []
        done_at: dict[tuple[int, int], int] = {}
        ready_at: dict[int, int] = {}
        round_done = {g: anyio.Event() for g in range(1, ROTATIONS + 2)}
        stop = anyio.Event()
        serials: list[int] = []

        async def writer(index: int) -> None:
            count = 0
            while not stop.is_set():
                generation = certificate.generation
                count += 1
                body = setup.widget(f"r{index}-{count}", "v1", {"replicas": 1})
                response = await http.post(setup.path("v1"), params={"dryRun": "All"}, json=body)
                labels = response.json().get("metadata", {}).get("labels", {})
                if response.status_code != 201 or labels.get("mutated-by") != "kube-runtime":
                    failures.append(f"writer {index}: {response.status_code} {response.text}")
                done_at[index, generation] = done_at.get((index, generation), 0) + 1
                if done_at[index, generation] == PER_ROUND:
                    ready_at[generation] = ready_at.get(generation, 0) + 1
                    if ready_at[generation] == WRITERS:
                        round_done[generation].set()

        async with anyio.create_task_group() as tg:
            for index in range(WRITERS):
                tg.start_soon(writer, index)
            with anyio.fail_after(120):
                for generation in range(1, ROTATIONS + 1):
                    await round_done[generation].wait()
                    pair = setup.ca.issue(setup.cert_dir, hosts=["127.0.0.1"])  # same files, new pair
                    serials.append(x509.load_pem_x509_certificate(pair.cert_file.read_bytes()).serial_number)
                    await certificate.wait_generation(generation + 1)
                await round_done[ROTATIONS + 1].wait()
            stop.set()
        assert failures == []
        assert len(set(serials)) == ROTATIONS
        trusting = ssl.create_default_context(cadata=setup.ca.pem.decode())
        assert await handshake_serial(setup.server.url, trusting) == serials[-1]  # the last pair is served
        reloads = setup.registry.get_sample_value(
            "kube_runtime_webhook_certificate_reloads_total", {"result": "success"}
        )
        assert reloads == ROTATIONS + 1
        validated = setup.registry.get_sample_value(
            "kube_runtime_webhook_admission_results_total", {"webhook": "/validate", "result": "allowed"}
        )
        assert validated is not None
        assert validated >= WRITERS * PER_ROUND * (ROTATIONS + 1)
