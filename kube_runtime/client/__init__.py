"""Talking HTTP to a Kubernetes API server.

``Client`` owns the connection pool and the request layers (tracing, retry, auth, metrics); ``Api``
gives typed verbs for one resource kind; ``ClientConfig`` finds the server and credentials the way
kubectl does; ``discover`` finds the ``ApiResource`` of a custom kind.
"""

from kube_runtime.client.api import Api, PatchType, WatchEventStream
from kube_runtime.client.auth import (
    Authenticator,
    Credentials,
    CredentialSource,
    ExecPlugin,
    StaticToken,
    TokenFile,
)
from kube_runtime.client.client import Client, ResponseStream
from kube_runtime.client.config import ClientConfig
from kube_runtime.client.discovery import KindNotFound, discover
from kube_runtime.client.errors import (
    ApiError,
    AuthenticationError,
    ConfigError,
    KubeError,
    RequestTimeout,
    TransportError,
    WatchDecodeError,
    WatchTimeout,
)
from kube_runtime.client.lines import (
    ADDED,
    BOOKMARK,
    DELETED,
    MODIFIED,
    LineSplitter,
    WatchDecoder,
    WatchEvent,
    WatchItem,
    decode_event,
)
from kube_runtime.client.metrics import ClientMetrics
from kube_runtime.client.resource import ApiResource
from kube_runtime.client.retry import RetryPolicy

__all__ = [
    "ADDED",
    "BOOKMARK",
    "DELETED",
    "MODIFIED",
    "Api",
    "ApiError",
    "ApiResource",
    "AuthenticationError",
    "Authenticator",
    "Client",
    "ClientConfig",
    "ClientMetrics",
    "ConfigError",
    "CredentialSource",
    "Credentials",
    "ExecPlugin",
    "KindNotFound",
    "KubeError",
    "LineSplitter",
    "PatchType",
    "RequestTimeout",
    "ResponseStream",
    "RetryPolicy",
    "StaticToken",
    "TokenFile",
    "TransportError",
    "WatchDecodeError",
    "WatchDecoder",
    "WatchEvent",
    "WatchEventStream",
    "WatchItem",
    "WatchTimeout",
    "decode_event",
    "discover",
]
