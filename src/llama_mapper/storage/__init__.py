"""Adapters to durable state. The embedded defaults are local files."""
