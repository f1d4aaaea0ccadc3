"""Talking HTTP to a Kubernetes API server."""
