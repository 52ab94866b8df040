"""The detector registry: remote detectors persisted in the database, plus built-ins."""
