"""docs/typed-resources.md's declaration example runs and yields a valid CRD."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def test_the_declaration_example_builds_a_crd() -> None:
    text = (ROOT / "docs" / "typed-resources.md").read_text()
    declaration = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(declaration, "typed-resources.md", "exec", dont_inherit=True), namespace)
    from kube_runtime.resources import crd

    spec = crd(namespace["Widget"])["spec"]
    schema = spec["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert schema["x-kubernetes-validations"] == [{"rule": "self.minReady <= self.replicas"}]
    assert "minReady" in schema["properties"]
    assert spec["versions"][0]["subresources"] == {"status": {}}
