"""Reading, validating, splitting and transforming labelled face images."""

from agegender.data.readers import read_dataset
from agegender.data.records import DataError, FaceRecord, Reading, ReadReport
from agegender.data.splits import split_records

__all__ = ["DataError", "FaceRecord", "ReadReport", "Reading", "read_dataset", "split_records"]
