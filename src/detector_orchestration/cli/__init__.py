"""The ``orch`` command."""
