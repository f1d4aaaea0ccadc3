"""Watching resources: the watcher state machine and its I/O driver."""
