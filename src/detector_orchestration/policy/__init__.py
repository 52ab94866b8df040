"""Tenant policy bundles: their YAML schema, versioned store and decision engines."""
