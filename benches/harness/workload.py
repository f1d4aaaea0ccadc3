"""The objects every peer caches: ConfigMaps of about 1 KB and Pods of about 5 KB, both carrying
realistic managedFields (what kubectl and the controllers write on a real cluster)."""

from __future__ import annotations

from typing import Any

__all__ = ["configmap_template", "pod_template", "template"]

_TS = "2025-01-01T00:00:00Z"


def configmap_template() -> dict[str, Any]:
    """About 1.2 KB of JSON: labels, an annotation, 3 data keys, two managedFields entries."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "labels": {"app.kubernetes.io/name": "bench", "app.kubernetes.io/part-of": "kube-runtime"},
            "annotations": {"bench.kube-runtime.io/owner": "benchmarks"},
            "managedFields": [
                {
                    "manager": "kubectl-client-side-apply",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": _TS,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:data": {".": {}, "f:config.yaml": {}, "f:feature-flags": {}, "f:endpoint": {}},
                        "f:metadata": {
                            "f:annotations": {".": {}, "f:bench.kube-runtime.io/owner": {}},
                            "f:labels": {
                                ".": {},
                                "f:app.kubernetes.io/name": {},
                                "f:app.kubernetes.io/part-of": {},
                            },
                        },
                    },
                },
                {
                    "manager": "bench-operator",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": _TS,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:annotations": {"f:kube-runtime.dev/emit-ns": {}}}},
                },
            ],
        },
        "data": {
            "config.yaml": "server:\n  port: 8080\n  workers: 4\nlog:\n  level: info\n" + "x" * 200,
            "feature-flags": "alpha=false,beta=true,gamma=false",
            "endpoint": "https://service.bench.svc.cluster.local:8443/api/v1",
        },
    }


def _container(i: int) -> dict[str, Any]:
    return {
        "name": f"app-{i}",
        "image": "registry.example.com/team/app:v1.42.7@sha256:" + "ab" * 32,
        "args": ["--config=/etc/app/config.yaml", "--metrics-bind-address=:8080", "--leader-elect"],
        "ports": [
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
        ],
        "env": [{"name": f"SETTING_{k}", "value": f"value-{k}"} for k in range(3)]
        + [
            {
                "name": "POD_NAME",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}},
            }
        ],
        "resources": {
            "limits": {"cpu": "500m", "memory": "256Mi"},
            "requests": {"cpu": "100m", "memory": "128Mi"},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/app"},
            {
                "name": "kube-api-access",
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                "readOnly": True,
            },
        ],
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
            "periodSeconds": 10,
            "timeoutSeconds": 1,
            "successThreshold": 1,
            "failureThreshold": 3,
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }


def pod_template() -> dict[str, Any]:
    """About 5 KB of JSON: a Deployment's Pod with status and the controller-manager's and kubelet's
    managedFields."""
    spec_fields: dict[str, Any] = {
        "f:containers": {
            'k:{"name":"app-0"}': {
                ".": {},
                "f:args": {},
                "f:env": {},
                "f:image": {},
                "f:livenessProbe": {},
                "f:ports": {},
                "f:resources": {},
            }
        },
        "f:volumes": {'k:{"name":"config"}': {".": {}, "f:configMap": {}}},
        "f:serviceAccountName": {},
        "f:restartPolicy": {},
        "f:dnsPolicy": {},
    }
    status_fields: dict[str, Any] = {
        "f:conditions": {
            f'k:{{"type":"{t}"}}': {".": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}}
            for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        },
        "f:containerStatuses": {},
        "f:hostIP": {},
        "f:phase": {},
        "f:podIP": {},
        "f:podIPs": {},
        "f:startTime": {},
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "labels": {"app.kubernetes.io/name": "bench", "pod-template-hash": "7d9f8c6b5d"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "bench-7d9f8c6b5d",
                    "uid": "4b0c6c8e-0000-4000-8000-000000000001",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": [
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": _TS,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:metadata": {
                            "f:labels": {".": {}, "f:app.kubernetes.io/name": {}, "f:pod-template-hash": {}},
                            "f:ownerReferences": {".": {}, 'k:{"uid":"4b0c6c8e"}': {}},
                        },
                        "f:spec": spec_fields,
                    },
                },
                {
                    "manager": "kubelet",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": _TS,
                    "fieldsType": "FieldsV1",
                    "subresource": "status",
                    "fieldsV1": {"f:status": status_fields},
                },
            ],
        },
        "spec": {
            "containers": [_container(0), _container(1)],
            "volumes": [
                {"name": "config", "configMap": {"name": "app-config", "defaultMode": 420}},
                {
                    "name": "kube-api-access",
                    "projected": {
                        "defaultMode": 420,
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {
                                "configMap": {
                                    "name": "kube-root-ca.crt",
                                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                }
                            },
                        ],
                    },
                },
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "nodeName": "node-17",
            "schedulerName": "default-scheduler",
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                }
            ],
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": _TS}
                for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
            "hostIP": "10.0.3.17",
            "podIP": "10.244.17.23",
            "podIPs": [{"ip": "10.244.17.23"}],
            "startTime": _TS,
            "qosClass": "Burstable",
            "containerStatuses": [
                {
                    "name": f"app-{i}",
                    "ready": True,
                    "restartCount": 0,
                    "started": True,
                    "image": "registry.example.com/team/app:v1.42.7",
                    "imageID": "registry.example.com/team/app@sha256:" + "cd" * 32,
                    "containerID": "containerd://" + "ef" * 32,
                    "state": {"running": {"startedAt": _TS}},
                }
                for i in range(2)
            ],
        },
    }


def template(resource: str) -> dict[str, Any]:
    return configmap_template() if resource == "configmaps" else pod_template()
