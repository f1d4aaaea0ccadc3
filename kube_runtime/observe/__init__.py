"""Observability: logs, traces, metrics, health probes."""
