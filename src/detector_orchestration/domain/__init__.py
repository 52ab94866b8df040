"""Pure orchestration rules: coverage, conflicts, decisions and redaction. No I/O here."""
