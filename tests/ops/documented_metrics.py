"""The metric names kube-runtime documents (docs/monitoring.md), with their label names.

Dashboards and rules may use only these, the series Prometheus itself creates for every target, and the
kubelet's cAdvisor container metrics (the only place a container's memory limit and CFS throttling live).
"""

from __future__ import annotations

__all__ = [
    "CADVISOR_METRICS",
    "COUNTERS",
    "GAUGES",
    "HISTOGRAMS",
    "PROCESS_METRICS",
    "PROMETHEUS_METRICS",
    "RUNTIME_METRICS",
    "TARGET_LABELS",
    "allowed_series_names",
]

# name -> label names
COUNTERS: dict[str, frozenset[str]] = {
    "controller_runtime_reconcile_total": frozenset({"controller", "result"}),
    "controller_runtime_reconcile_errors_total": frozenset({"controller"}),
    "controller_runtime_reconcile_timeouts_total": frozenset({"controller"}),
    "controller_runtime_terminal_reconcile_errors_total": frozenset({"controller"}),
    "controller_runtime_reconcile_panics_total": frozenset({"controller"}),
    "workqueue_adds_total": frozenset({"name", "controller"}),
    "workqueue_retries_total": frozenset({"name", "controller"}),
    "rest_client_requests_total": frozenset({"code", "method", "host"}),
    "rest_client_request_retries_total": frozenset({"code", "verb", "host"}),
    "kube_runtime_watch_events_total": frozenset({"watch", "type"}),
    "kube_runtime_watch_restarts_total": frozenset({"watch"}),
    "kube_runtime_watch_relists_total": frozenset({"watch"}),
    "kube_runtime_watch_errors_total": frozenset({"watch", "code"}),
    "kube_runtime_watch_idle_timeouts_total": frozenset({"watch", "phase"}),
    "kube_runtime_hot_loop_detections_total": frozenset({"controller"}),
    "controller_runtime_webhook_requests_total": frozenset({"code", "webhook"}),
    "controller_runtime_webhook_panics_total": frozenset(),
    "controller_runtime_conversion_webhook_panics_total": frozenset(),
    "kube_runtime_webhook_admission_results_total": frozenset({"webhook", "result"}),
    "kube_runtime_webhook_certificate_reloads_total": frozenset({"result"}),
    "kube_runtime_shard_moves_total": frozenset({"ring"}),
    "kube_runtime_shard_drains_total": frozenset({"ring"}),
    "kube_runtime_shard_drains_acknowledged_total": frozenset({"ring", "shard"}),
}
HISTOGRAMS: dict[str, frozenset[str]] = {
    "controller_runtime_reconcile_time_seconds": frozenset({"controller"}),
    "workqueue_queue_duration_seconds": frozenset({"name", "controller"}),
    "workqueue_work_duration_seconds": frozenset({"name", "controller"}),
    "rest_client_request_duration_seconds": frozenset({"verb", "host"}),
    "kube_runtime_event_loop_lag_seconds": frozenset(),
    "controller_runtime_webhook_latency_seconds": frozenset({"webhook"}),
}
GAUGES: dict[str, frozenset[str]] = {
    "controller_runtime_active_workers": frozenset({"controller"}),
    "controller_runtime_max_concurrent_reconciles": frozenset({"controller"}),
    "workqueue_depth": frozenset({"name", "controller", "priority"}),
    "workqueue_unfinished_work_seconds": frozenset({"name", "controller"}),
    "workqueue_longest_running_processor_seconds": frozenset({"name", "controller"}),
    "leader_election_master_status": frozenset({"name"}),
    "kube_runtime_watch_last_event_timestamp_seconds": frozenset({"watch"}),
    "kube_runtime_store_objects": frozenset({"store"}),
    "kube_runtime_store_ready": frozenset({"store"}),
    "controller_runtime_webhook_requests_in_flight": frozenset({"webhook"}),
    "kube_runtime_shard_objects": frozenset({"ring", "shard"}),
    "kube_runtime_shard_members": frozenset({"ring"}),
    "kube_runtime_shard_member_status": frozenset({"ring", "shard"}),
    "kube_runtime_shard_assigner_lag_seconds": frozenset({"ring"}),
}
# prometheus_client's process collector (Linux).
PROCESS_METRICS: dict[str, frozenset[str]] = {
    name: frozenset()
    for name in (
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_start_time_seconds",
        "process_open_fds",
        "process_max_fds",
    )
}
# Synthetic per-target series written by Prometheus.
PROMETHEUS_METRICS: dict[str, frozenset[str]] = {"up": frozenset()}
# The kubelet's cAdvisor metrics (scraped by kube-prometheus-stack, not exported by kube-runtime).
CADVISOR_METRICS: dict[str, frozenset[str]] = {
    name: frozenset({"container"})
    for name in (
        "container_memory_working_set_bytes",
        "container_spec_memory_limit_bytes",
        "container_cpu_cfs_periods_total",
        "container_cpu_cfs_throttled_periods_total",
    )
}
# Labels Prometheus attaches to every series of a target (static config or Kubernetes service discovery).
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "service", "endpoint"})

RUNTIME_METRICS: dict[str, frozenset[str]] = {**COUNTERS, **HISTOGRAMS, **GAUGES}


def allowed_series_names() -> dict[str, frozenset[str]]:
    """Every series name a query may select, mapped to the labels it may match on."""
    names: dict[str, frozenset[str]] = {}
    for group in (COUNTERS, GAUGES, PROCESS_METRICS, PROMETHEUS_METRICS, CADVISOR_METRICS):
        names.update(group)
    for name, labels in HISTOGRAMS.items():
        names[f"{name}_bucket"] = labels | {"le"}
        names[f"{name}_sum"] = labels
        names[f"{name}_count"] = labels
    return {name: labels | TARGET_LABELS for name, labels in names.items()}
