"""Data sets as users hand them over: images/, masks/, a class table and split lists."""

from edgeseg.data.classes import IGNORE_ID, ClassInfo, ClassTable
from edgeseg.data.layout import DatasetLayout, Sample

__all__ = ["IGNORE_ID", "ClassInfo", "ClassTable", "DatasetLayout", "Sample"]
