"""DICOM knowledge: UIDs, header reading, DICOM JSON, the searchable attributes and matching."""
