"""The ``mapper`` command line."""
