"""Protection against slow and broken dependencies, shared by the mapper and orch."""
