"""The README's webhook snippet runs as written: its handlers deny, patch and convert."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette

from tests.webhooks.conftest import admission_body, conversion_body, widget

README = Path(__file__).resolve().parents[2] / "README.md"


def snippet_namespace() -> dict[str, Any]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    snippet = next(b for b in blocks if "webhooks.converter(" in b)
    namespace: dict[str, Any] = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    return namespace


async def test_the_readme_webhooks_deny_patch_and_convert() -> None:
    hooks = snippet_namespace()["webhooks"]
    transport = httpx.ASGITransport(app=Starlette(routes=hooks.routes()))
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(transport=transport, base_url="http://webhooks") as http:
        denied = await http.post(
            "/validate-widgets", content=admission_body(widget(replicas=11)), headers=headers
        )
        assert denied.json()["response"]["status"]["message"] == "replicas must be at most 10"
        bare = widget()
        del bare["spec"]["replicas"]
        mutated = await http.post("/default-widgets", content=admission_body(bare), headers=headers)
        patch = orjson.loads(base64.b64decode(mutated.json()["response"]["patch"]))
        assert patch == [{"op": "add", "path": "/spec/replicas", "value": 1}]
        converted = await http.post(
            "/convert-widgets",
            content=conversion_body([widget(replicas=4)], "example.com/v2"),
            headers=headers,
        )
        assert converted.json()["response"]["convertedObjects"][0]["spec"] == {"size": {"count": 4}}
