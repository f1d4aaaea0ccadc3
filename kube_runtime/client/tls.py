"""The TLS context a client connects with: server CA, client certificate, skip-verify.

Unlike kr8s's ``KubeAuth.ssl_context`` (which writes ``*-data`` fields to temporary files that are
never deleted), CA data is loaded from memory and client certificate data goes through a private
temporary directory that is removed as soon as the key is loaded.

A client certificate can be replaced on a live context (:func:`load_client_certificate`): new
connections present the new certificate, established ones keep theirs. That is how exec plugins
that return certificates are refreshed without rebuilding the HTTP client.
"""

from __future__ import annotations

import os
import ssl
import tempfile

__all__ = ["load_client_certificate", "ssl_context"]


def ssl_context(
    *,
    ca_file: str | None = None,
    ca_data: bytes | None = None,
    client_cert_file: str | None = None,
    client_key_file: str | None = None,
    client_cert_data: bytes | None = None,
    client_key_data: bytes | None = None,
    insecure_skip_tls_verify: bool = False,
) -> ssl.SSLContext:
    """Build a client context. With a CA given, only that CA is trusted (as kubectl does); without
    one, the system trust store. Reads certificate files synchronously (call at startup)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure_skip_tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif ca_file or ca_data:
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        if ca_data:
            context.load_verify_locations(cadata=ca_data.decode("ascii"))
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if client_cert_file and client_key_file:
        context.load_cert_chain(certfile=client_cert_file, keyfile=client_key_file)
    elif client_cert_data and client_key_data:
        load_client_certificate(context, client_cert_data, client_key_data)
    return context


def load_client_certificate(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """Install a PEM certificate and key on ``context``; the key touches disk only in a 0700
    temporary directory that is deleted before returning."""
    with tempfile.TemporaryDirectory(prefix="kube-runtime-cert-") as directory:
        cert_path = os.path.join(directory, "tls.crt")
        key_path = os.path.join(directory, "tls.key")
        for path, data in ((cert_path, cert_pem), (key_path, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        context.load_cert_chain(certfile=cert_path, keyfile=key_path)
