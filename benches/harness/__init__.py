"""The side-by-side benchmark harness behind ``benches/run.py`` (server, peers, scenarios, report)."""
