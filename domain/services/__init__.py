"""Use cases: ingest, search, retrieve, delete."""
