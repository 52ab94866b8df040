"""orch's HTTP API."""
