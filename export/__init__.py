"""Parquet export (`tessera export`): arrives with its own issue."""
