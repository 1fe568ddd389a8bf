"""Tessera's core: DICOM, storage and the use cases; knows nothing of HTTP or Parquet."""
