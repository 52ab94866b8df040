"""Metrics (and, later, tracing and logs) with privacy-safe, bounded labels."""
