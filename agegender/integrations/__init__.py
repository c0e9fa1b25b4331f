"""Bridges to other engines (each needs its optional extra; importing one without it raises MissingExtraError)."""
