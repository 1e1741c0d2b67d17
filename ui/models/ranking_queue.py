"""What to label next in the app (pure Python): the unlabelled series of the study browser as inputs for
:func:`medtl.inference.rank.rank`, and its ranking as a queue that "Next case" walks through.

A series is ranked through the folder that holds it alone (or its one file, for a multi-frame series): a ranking
input is a path, so a series that shares its folder with other files cannot be named by one and is skipped with
the reason. A series with a saved label is left out: it is labelled already.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from medtl.dicom.records import PatientInfo, SeriesInfo, StudyInfo
from medtl.inference.rank import Ranking
from medtl.labels.store import LabelStore, sole_series_folder


@dataclass(frozen=True)
class SeriesInput:
    """A series to rank: the path that names it alone, its series UID and the name the list shows."""

    path: Path
    series_uid: str
    name: str


def series_inputs(series: Iterable[tuple[PatientInfo, StudyInfo, SeriesInfo]], store: LabelStore) -> tuple[list[SeriesInput], list[str]]:
    """The unlabelled ``series`` as ranking inputs, and a line for each series left out (labelled, or not in a folder of its own)."""
    inputs: list[SeriesInput] = []
    skipped: list[str] = []
    for _patient, study, info in series:
        name = f"{info.description or info.series_uid} ({info.modality or '?'}, {len(info.files)} images)"
        if store.find(study.study_uid, info.series_uid) is not None:
            skipped.append(f"{name}: labelled already")
            continue
        path = sole_series_folder(info.files) or (info.files[0] if len(info.files) == 1 else None)
        if path is None:
            skipped.append(f"{name}: shares its folder with other files, so it cannot be ranked by its folder")
            continue
        inputs.append(SeriesInput(Path(path), info.series_uid, name))
    return inputs, skipped


@dataclass(frozen=True)
class QueueEntry:
    """One ranked series: its place (1: label it first), score, and the slice (along z) the model is least sure of."""

    rank: int
    series: SeriesInput
    score: float
    slice_index: int | None = None

    def text(self) -> str:
        where = f", least sure on slice {self.slice_index + 1}" if self.slice_index is not None else ""
        return f"{self.rank}. {self.series.name}: {self.score:.3f}{where}"


class RankingQueue:
    """A ranking of :class:`SeriesInput` s, most useful first; :meth:`next` gives the entry after the last one opened."""

    def __init__(self, ranking: Ranking, inputs: Iterable[SeriesInput]) -> None:
        by_path = {series.path: series for series in inputs}
        self.method, self.score_meaning = ranking.method, ranking.score
        self.entries = [QueueEntry(row.rank, by_path[row.input], row.score, row.most_uncertain_slice) for row in ranking.ranked]
        self.failed = [f"{by_path[failure.input].name}: {failure.reason}" for failure in ranking.failed]
        self.position = -1  # the entry opened last

    def next(self) -> QueueEntry | None:
        """The entry after the one opened last (the first, at first), now the one opened; None past the end."""
        if self.position + 1 >= len(self.entries):
            return None
        self.position += 1
        return self.entries[self.position]

    def opened(self, index: int) -> QueueEntry:
        """Entry ``index`` was opened (from the list): "Next case" goes on after it."""
        self.position = index
        return self.entries[index]
