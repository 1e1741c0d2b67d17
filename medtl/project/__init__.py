"""Annotation projects: a folder with a database of series, labels, who labelled what, and runs, and the masks.

Headless (no Qt). :class:`Project` is the store; :mod:`medtl.project.training` turns it into training
data, :mod:`medtl.project.agreement` compares readers, :mod:`medtl.project.from_label_store` moves the
old global label store into a project.
"""

from medtl.project.project import Project
from medtl.project.records import AuditEntry, LabelDefinition, MaskVersion, RunRecord, SeriesRecord

__all__ = ["AuditEntry", "LabelDefinition", "MaskVersion", "Project", "RunRecord", "SeriesRecord"]
