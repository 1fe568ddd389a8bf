"""DICOMweb (PS3.18) under /v2/, one module per service."""
