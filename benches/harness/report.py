"""Tables (markdown), ratios to kube-runtime, target checks and the machine description."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from typing import Any

__all__ = ["RATIO_SPECS", "machine", "render", "targets"]

# scenario key -> (metric, row fields that identify a comparable row, higher_is_better)
RATIO_SPECS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "s1": ("seconds", ("resource", "n"), False),
    "s2": ("max_sustained", (), True),
    "s3": ("p99_ms", ("concurrency", "reconcile_ms"), False),
    "s4": ("bytes_per_object", ("variant",), False),
}
OURS = "kube-runtime"


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f.readline().split(":", 1)[1].strip()
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory": mem,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "loadavg": os.getloadavg(),
    }


def tool_versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for name, argv in (("rustc", ["rustc", "--version"]), ("go", ["go", "version"])):
        try:
            out[name] = subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            out[name] = "not installed"
    return out


def add_ratios(key: str, result: dict[str, Any]) -> None:
    """Add ``vs_ours`` to each row: how many times better kube-runtime is (>1: ours is better)."""
    spec = RATIO_SPECS.get(key)
    if spec is None:
        return
    metric, ident, higher = spec
    ours = {tuple(r.get(k) for k in ident): r.get(metric) for r in result["rows"] if r.get("peer") == OURS}
    for row in result["rows"]:
        mine, theirs = ours.get(tuple(row.get(k) for k in ident)), row.get(metric)
        if isinstance(mine, int | float) and isinstance(theirs, int | float) and mine > 0 and theirs > 0:
            row["vs_ours"] = round(mine / theirs if higher else theirs / mine, 2)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v).replace("|", "/")


def table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)\n"
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, evaluated on this run (reported, never asserted)."""
    out: list[dict[str, Any]] = []

    def rows(key: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = results.get(key, {}).get("rows", [])
        return found

    def find(key: str, peer: str, **match: Any) -> dict[str, Any] | None:
        return next(
            (
                r
                for r in rows(key)
                if r.get("peer") == peer and "error" not in r and all(r.get(k) == v for k, v in match.items())
            ),
            None,
        )

    ours2 = find("s2", OURS)
    for peer, want in (("kopf", 30.0), ("official", 4.0)):
        theirs = find("s2", peer)
        if not (ours2 and theirs):
            continue
        if theirs.get("max_sustained"):
            got = ours2["max_sustained"] / theirs["max_sustained"]
            value = f"{got:.1f}x"
        elif theirs.get("lowest_failed"):  # failed every step: its limit is below the lowest one
            got = ours2["max_sustained"] / theirs["lowest_failed"]
            value = f"> {got:.1f}x (it failed {theirs['lowest_failed']}/s)"
        else:
            continue
        out.append({"target": f"S2 ingest >= {want:g}x {peer}", "value": value, "met": got >= want})
    raw = find("s2", "raw (gc off)")
    if ours2 and raw and raw.get("max_sustained"):
        got = ours2["max_sustained"] / raw["max_sustained"]
        value = f"{got:.2f}x"
        if raw.get("bound") == "server":
            value += " (raw bound by the server: its own limit is higher)"
        out.append({"target": "S2 ingest >= 0.5x raw limit (gc off)", "value": value, "met": got >= 0.5})
    for r in rows("s1"):
        if r.get("peer") != OURS or "error" in r:
            continue
        cr = find("s1", "controller-runtime", resource=r["resource"], n=r["n"])
        if cr:
            got = r["seconds"] / cr["seconds"]
            out.append(
                {
                    "target": f"S1 cold sync {r['resource']} n={r['n']} <= 2x controller-runtime",
                    "value": f"{got:.2f}x",
                    "met": got <= 2.0,
                }
            )
    for variant, want, label in (
        ("full", 2.5, "default store"),
        ("strip", 1.5, "default store, managedFields stripped"),
        ("dict", 2.5, "dict store opt-out"),
        ("dict-strip", 1.5, "dict store opt-out, stripped"),
    ):
        r4 = find("s4", OURS, variant=variant)
        if r4:
            out.append(
                {
                    "target": f"S4 memory ({label}) <= {want}x JSON",
                    "value": f"{r4['x_json']}x",
                    "met": r4["x_json"] <= want,
                }
            )
    compact_pauses = results.get("s4", {}).get("gc_longest_ms_compact") or []
    if compact_pauses:
        out.append(
            {
                "target": "S4 longest GC pause < 50 ms (bench_store, default compact store)",
                "value": f"{compact_pauses[-1]:.1f} ms",
                "met": compact_pauses[-1] < 50,
            }
        )
    pauses = results.get("s4", {}).get("gc_longest_ms") or []
    if pauses:
        out.append(
            {
                "target": "S4 longest GC pause < 50 ms (bench_store, dict store + FreezeAfterSync)",
                "value": f"{pauses[-1]:.1f} ms",
                "met": pauses[-1] < 50,
            }
        )
    for r in rows("s3"):
        if r.get("peer") == OURS and r.get("p99_ms") is not None:
            out.append(
                {
                    "target": f"S3 p99 < 10 ms (c={r['concurrency']}, {r['reconcile_ms']} ms reconcile)",
                    "value": f"{r['p99_ms']} ms",
                    "met": r["p99_ms"] < 10,
                }
            )
    for r in rows("s5"):
        if r.get("peer") == OURS:
            out.append(
                {
                    "target": f"S5 zero lost updates ({r['case']})",
                    "value": str(r.get("lost_updates")),
                    "met": r.get("lost_updates") == 0,
                }
            )
    return out


def render(meta: dict[str, Any], results: dict[str, Any], checks: list[dict[str, Any]]) -> str:
    parts = [f"# kube-runtime benchmarks ({meta['mode']}, {meta['date']})\n"]
    m = meta["machine"]
    parts.append(
        f"Machine: {m['cpu']} ({m['cores']} cores), {m['memory']}, Linux {m['kernel']}, "
        f"Python {m['python']}. "
        f"Load average at start {tuple(round(x, 2) for x in meta['load_start'])}, "
        f"at end {tuple(round(x, 2) for x in meta['load_end'])}. Server pinned to CPU {meta['server_cpu']}, "
        f"peer to CPU {meta['peer_cpu']} (taskset). Wall time {meta['wall_s']:.0f} s.\n"
    )
    parts.append("Versions: " + "; ".join(f"{k}: {v}" for k, v in meta["versions"].items()) + "\n")
    if meta["unavailable"]:
        parts.append(
            "Not measured here: " + "; ".join(f"{k}: {v}" for k, v in meta["unavailable"].items()) + "\n"
        )
    parts.append(
        "`vs_ours`: how many times better kube-runtime is than that row's peer on the scenario's "
        "main metric (>1: kube-runtime better; S1 seconds, S2 max_sustained, S3 p99_ms, S4 "
        "bytes_per_object).\n"
    )
    for key in sorted(results):
        res = results[key]
        parts.append(f"## {res['title']}\n")
        parts.append(table(res["rows"]))
        for note in res.get("notes", []):
            parts.append(f"- {note}")
        if res.get("verbatim"):
            parts.append("\n```\n" + res["verbatim"] + "\n```")
        parts.append("")
    if checks:
        parts.append("## Targets (reported, not asserted)\n")
        parts.append(table(checks))
    for note in meta.get("notes", []):
        parts.append(f"- {note}")
    return "\n".join(parts) + "\n"
