"""STOW-RS failure and warning reasons (PS3.18 Table 10.5.3-1, PS3.4 Annex GG, Azure codes)."""

from enum import IntEnum


class FailureReason(IntEnum):
    PROCESSING_FAILURE = 0x0110  # 272
    CANNOT_UNDERSTAND = 0xA900  # 43264: not DICOM, or a required attribute missing or invalid
    STUDY_UID_MISMATCH = 0xA901  # 43265: StudyInstanceUID differs from the one in the URL
    INSTANCE_CONFLICT = 0xB00E  # 45070: other content already stored under this SOPInstanceUID


class WarningReason(IntEnum):
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xB007  # 45063: stored, some attributes invalid
