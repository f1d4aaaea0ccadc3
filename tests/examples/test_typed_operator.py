"""examples.typed_operator: the typed Website operator runs its whole demo as a process
(``python -m examples.typed_operator --embedded``: reconciles, and its validator, defaulter and
v1alpha1 <-> v1 converter called by the API server), type-checks under mypy --strict, and its CRD
comes from the model through the CLI."""

from __future__ import annotations

import subprocess
import sys

import anyio
import yaml

from examples.typed_operator.resources import Website
from kube_runtime.resources import crd
from tests.examples.process import REPO, WAIT, run_example

MODULE = "examples.typed_operator"


async def test_demo_runs_to_completion_as_a_process() -> None:
    async with run_example(MODULE, "--embedded") as ex:
        await ex.wait_for_log("scenario finished")
        with anyio.fail_after(WAIT):
            assert await ex.process.wait() == 0, ex.tail()
    steps = [r["step"] for r in ex.matching("converged")]
    assert steps == [
        "CRD served",
        "webhooks called",
        "page rendered",
        "Ready condition set",
        "page re-rendered",
        "Ready for the new generation",
        "deleted page restored",
        "website and page deleted",
        "v1alpha1 website defaulted and rendered",
        "v1alpha1 website deleted",
    ]
    (refused,) = ex.matching("website refused", website="markup")
    assert refused["reason"] == (
        'admission webhook "vwebsite.demo.kube-runtime.dev" denied the request: '
        "spec.title is plain text: it must not contain < >"
    )
    # the validator's denial is logged by the webhook with the review's uid and the object
    (denied,) = ex.matching("admission denied", webhook="/validate-websites")
    assert denied["object.ref"] == "Website.v1.demo.kube-runtime.dev/markup.default"
    assert denied["review.uid"]
    published = ex.matching("website published", website="home")
    assert {r["title"] for r in published} == {"Home", "Welcome"}
    # Passes that found nothing to change wrote nothing: the same resourceVersion came back.
    versions = [r["resource_version"] for r in published]
    assert len(versions) > len(set(versions)), versions
    assert len(ex.matching("website cleaned up", website="home")) == 1
    assert not ex.matching("reconcile error"), ex.tail()


def test_example_passes_mypy_strict() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "-p", MODULE],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_prints_the_examples_crd() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kube_runtime", "crd", f"{MODULE}.resources:Website"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    (document,) = yaml.safe_load_all(result.stdout)
    assert document == crd(Website)
    assert document["spec"]["versions"][0]["additionalPrinterColumns"][1]["name"] == "Ready"
