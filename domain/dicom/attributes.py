"""The attributes Tessera indexes: where each lives, its VR, and what QIDO returns by default."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword


class Level(Enum):
    STUDY = "study"
    SERIES = "series"
    INSTANCE = "instance"


@dataclass(frozen=True)
class Attribute:
    keyword: str
    tag: str  # eight upper-case hex digits, as DICOM JSON names it
    vr: str
    level: Level
    column: str
    searchable: bool = True


def _attr(keyword: str, level: Level, column: str, *, searchable: bool = True) -> Attribute:
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    return Attribute(keyword, f"{tag:08X}", dictionary_VR(tag), level, column, searchable)


S, SE, IN = Level.STUDY, Level.SERIES, Level.INSTANCE

ATTRIBUTES: tuple[Attribute, ...] = (
    _attr("StudyInstanceUID", S, "study_uid"),
    _attr("PatientName", S, "patient_name"),
    _attr("PatientID", S, "patient_id"),
    _attr("PatientBirthDate", S, "patient_birth_date"),
    _attr("PatientSex", S, "patient_sex"),
    _attr("AccessionNumber", S, "accession_number"),
    _attr("ReferringPhysicianName", S, "referring_physician_name"),
    _attr("StudyDate", S, "study_date"),
    _attr("StudyTime", S, "study_time"),
    _attr("StudyDescription", S, "study_description"),
    _attr("StudyID", S, "study_id"),
    _attr("ModalitiesInStudy", S, "modalities_in_study"),
    _attr("NumberOfStudyRelatedSeries", S, "number_of_series", searchable=False),
    _attr("NumberOfStudyRelatedInstances", S, "number_of_instances", searchable=False),
    _attr("SeriesInstanceUID", SE, "series_uid"),
    _attr("Modality", SE, "modality"),
    _attr("SeriesDescription", SE, "series_description"),
    _attr("SeriesNumber", SE, "series_number"),
    _attr("SeriesDate", SE, "series_date"),
    _attr("PerformedProcedureStepStartDate", SE, "performed_procedure_step_start_date"),
    _attr("ManufacturerModelName", SE, "manufacturer_model_name"),
    _attr("BodyPartExamined", SE, "body_part_examined"),
    _attr("NumberOfSeriesRelatedInstances", SE, "number_of_instances", searchable=False),
    _attr("SOPInstanceUID", IN, "sop_instance_uid"),
    _attr("SOPClassUID", IN, "sop_class_uid"),
    _attr("InstanceNumber", IN, "instance_number"),
    _attr("Rows", IN, "rows", searchable=False),
    _attr("Columns", IN, "columns", searchable=False),
    _attr("BitsAllocated", IN, "bits_allocated", searchable=False),
    _attr("NumberOfFrames", IN, "number_of_frames", searchable=False),
)

BY_KEYWORD = {a.keyword: a for a in ATTRIBUTES}
# Summaries the index computes from its rows, never read from an instance.
COMPUTED = frozenset(
    {
        "ModalitiesInStudy",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
        "NumberOfSeriesRelatedInstances",
    }
)
BY_TAG = {a.tag: a for a in ATTRIBUTES}

# What QIDO returns with no includefield (PS3.18 Tables 10.6.3-3 to 10.6.3-5, as far as the
# index holds them); RetrieveURL and InstanceAvailability are added by the search service.
DEFAULT_RETURN: dict[Level, tuple[str, ...]] = {
    S: (
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "ModalitiesInStudy",
        "ReferringPhysicianName",
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyID",
        "StudyDescription",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    ),
    SE: (
        "SeriesInstanceUID",
        "Modality",
        "SeriesDescription",
        "SeriesNumber",
        "PerformedProcedureStepStartDate",
        "NumberOfSeriesRelatedInstances",
    ),
    IN: (
        "SOPClassUID",
        "SOPInstanceUID",
        "InstanceNumber",
        "Rows",
        "Columns",
        "BitsAllocated",
        "NumberOfFrames",
    ),
}

# Levels whose attributes each QIDO resource can match on and returns (PS3.18 10.6.1.3).
LEVELS_OF_RESOURCE: dict[tuple[Level, bool, bool], tuple[Level, ...]] = {
    # (result level, study in path, series in path)
    (S, False, False): (S,),
    (SE, False, False): (S, SE),
    (SE, True, False): (SE,),
    (IN, False, False): (S, SE, IN),
    (IN, True, False): (SE, IN),
    (IN, True, True): (IN,),
}


def resolve_attribute_id(attribute_id: str) -> tuple[str, str | None]:
    """A QIDO attribute ID (keyword or 8-hex tag) as (tag, keyword); raises KeyError if unknown."""
    if len(attribute_id) == 8 and all(c in "0123456789abcdefABCDEF" for c in attribute_id):
        tag = attribute_id.upper()
        return tag, keyword_for_tag(int(tag, 16)) or None
    number = tag_for_keyword(attribute_id)
    if number is None:
        raise KeyError(attribute_id)
    return f"{number:08X}", attribute_id
