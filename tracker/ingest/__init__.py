"""Ingest: validation, the group-commit writer, the /device events and HTTP formats."""
