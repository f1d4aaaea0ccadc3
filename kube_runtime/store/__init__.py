"""The reflector and its store: an always-consistent local cache."""
