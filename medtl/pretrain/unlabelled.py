"""Unlabelled 2D slices for self-supervised pretraining, from DICOM folders, NIfTI files and pictures.

:func:`collect_unlabelled` reads every input it is given:

- a folder: every DICOM image series under it (found with :func:`medtl.dicom.scan.scan`, through the
  catalog when one is given, and assembled with :func:`medtl.dicom.series.load_series`), plus every
  NIfTI and picture file under it (:func:`medtl.data.images.read_image`);
- a file: NIfTI, a picture, or one DICOM file.

Each volume is normalised as a whole exactly as fine-tuning will normalise it (the intensity part of
:func:`medtl.data.preprocessing.default_for` for its modality: CT one wide HU window, MR and the rest
0.5-99.5 percentiles, all to [0, 1]; RGB becomes grey), then up to ``slices_per_series`` slices with
enough foreground are taken along the stored slice axis, evenly spaced. A slice is ``[x, y]`` (as the
2D training pipeline presents an axial LPS slice), float16.

Patient-level: patients are counted (DICOM PatientID; a NIfTI or picture file counts as one) and, when
``max_slices`` caps the total, slices are taken from the patients in turn, so one large patient does not
crowd out the others. Patient IDs are only counted, never stored or reported.

A broken file or series never stops the collection: it is skipped and listed in ``problems`` with its
path and the reason. Only when nothing usable is left is a :class:`~medtl.errors.MedtlError` raised.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medtl.errors import MedtlError
from medtl.progress import Cancelled, CancelToken, ProgressCallback, report

if TYPE_CHECKING:
    from medtl.dicom.catalog import Catalog
    from medtl.dicom.volume import Volume

log = logging.getLogger(__name__)

MIN_FOREGROUND = 0.10
"""A slice is used when at least this fraction of its pixels is above 5 % of the volume's normalised range."""
MIN_SIDE = 16
"""Slices smaller than this on either side (e.g. scout thumbnails) are not used."""


@dataclass(frozen=True)
class Problem:
    """An input that was skipped: its path and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class UnlabelledSlices:
    """The slices to pretrain on, and counts of where they came from (no names, no IDs)."""

    slices: list[np.ndarray] = field(default_factory=list)
    """Each ``[x, y]`` float16 in the normalised range (about [0, 1])."""
    patients: int = 0
    volumes: int = 0
    modalities: dict[str, int] = field(default_factory=dict)
    """Volumes per modality."""
    problems: list[Problem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.slices)

    def summary(self) -> dict[str, Any]:
        """Counts for ``config.json``, ``summary.json`` and the model card."""
        return {
            "patients": self.patients,
            "volumes": self.volumes,
            "slices": len(self.slices),
            "modalities": dict(sorted(self.modalities.items())),
            "skipped_inputs": len(self.problems),
        }


@dataclass
class _Source:
    """One volume to read: ``load`` reads it; ``patient`` groups volumes (never reported)."""

    path: Path
    patient: str
    load: Callable[[], Volume]
    label: str = ""


def collect_unlabelled(
    paths: Sequence[Path | str],
    *,
    slices_per_series: int = 32,
    max_slices: int = 4000,
    catalog: Catalog | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> UnlabelledSlices:
    """The normalised slices of every readable image under ``paths``; see the module docstring."""
    if slices_per_series < 1 or max_slices < 2:
        raise MedtlError("slices_per_series must be at least 1 and max_slices at least 2")
    result = UnlabelledSlices()
    sources: list[_Source] = []
    for path in map(Path, paths):
        sources.extend(_sources_under(path, result.problems, catalog, cancel))
    per_patient: dict[str, list[np.ndarray]] = {}
    for index, source in enumerate(sources):
        if cancel is not None:
            cancel.raise_if_cancelled()
        report(progress, index, len(sources), f"reading image {index + 1} of {len(sources)}")
        try:
            volume = source.load()
            slices = volume_slices(volume, slices_per_series)
        except Cancelled:
            raise
        except MedtlError as error:
            result.problems.append(Problem(source.path, source.label + _without_path(str(error), source.path)))
            continue
        except Exception as error:  # noqa: BLE001 - one unreadable input must not end the collection
            result.problems.append(Problem(source.path, f"{source.label}unreadable ({type(error).__name__}: {error})"))
            continue
        if not slices:
            result.problems.append(Problem(source.path, f"{source.label}no slice with enough foreground (or smaller than {MIN_SIDE} pixels)"))
            continue
        result.volumes += 1
        modality = str(volume.metadata.get("modality") or "unknown")
        result.modalities[modality] = result.modalities.get(modality, 0) + 1
        per_patient.setdefault(source.patient, []).extend(slices)
    report(progress, len(sources), len(sources), "images read")
    result.patients = len(per_patient)
    result.slices = _take_in_turn(list(per_patient.values()), max_slices)
    if result.problems:  # counts only: paths may hold patient names (the caller shows the problems list)
        log.info("%d pretraining input(s) skipped", len(result.problems))
    if len(result.slices) < 2:
        found = "; ".join(map(str, result.problems[:3])) or "no DICOM series, NIfTI or picture files found"
        raise MedtlError(f"no usable images to pretrain on under {', '.join(map(str, paths))} ({found}); self-supervised pretraining needs at least two slices")
    return result


def volume_slices(volume: Volume, count: int) -> list[np.ndarray]:
    """Up to ``count`` evenly spaced slices with foreground, each ``[x, y]`` float16, normalised for the volume's modality."""
    array = normalise(volume)
    if min(array.shape[1:]) < MIN_SIDE:
        return []
    low, high = float(array.min()), float(array.max())
    if high <= low:
        return []
    threshold = low + 0.05 * (high - low)
    usable = [z for z in range(array.shape[0]) if (array[z] > threshold).mean() >= MIN_FOREGROUND]
    if len(usable) > count:
        usable = [usable[i] for i in np.linspace(0, len(usable) - 1, count).round().astype(int)]
    return [np.ascontiguousarray(array[z].T, dtype=np.float16) for z in usable]


def normalise(volume: Volume) -> np.ndarray:
    """The volume as ``[z, y, x]`` float32, scaled as fine-tuning's default preprocessing scales its modality."""
    from medtl.data.preprocessing import default_for

    modality = volume.metadata.get("modality")
    preprocessing = default_for("segmentation", modality, 2, 1)
    image = np.moveaxis(volume.array, -1, 0) if volume.is_rgb else volume.array[None]
    data: dict[str, Any] = {"image": image.astype(np.float32)}
    for transform in preprocessing.intensity_transforms():  # the very transforms fine-tuning applies
        data = transform(data)
    return np.asarray(data["image"][0], dtype=np.float32)


def _take_in_turn(groups: list[list[np.ndarray]], limit: int) -> list[np.ndarray]:
    """At most ``limit`` items, one from each group in turn."""
    taken = []
    for row in itertools.zip_longest(*groups):
        taken.extend(item for item in row if item is not None)
        if len(taken) >= limit:
            return taken[:limit]
    return taken


def _without_path(message: str, path: Path) -> str:
    return message.removeprefix(f"{path}: ")


def _sources_under(path: Path, problems: list[Problem], catalog: Catalog | None, cancel: CancelToken | None) -> Iterator[_Source]:
    from medtl.data.images import image_format, read_image

    if not path.exists():
        problems.append(Problem(path, "no such file or folder"))
        return
    if path.is_file():
        if image_format(path) == "dicom":
            yield _Source(path, f"file:{path}", lambda: _load_dicom_files([path], cancel))
        else:
            yield _Source(path, f"file:{path}", lambda: read_image(path))
        return
    yield from _dicom_series(path, problems, catalog, cancel)
    for file in sorted(path.rglob("*")):
        if file.is_file() and not file.name.startswith(".") and image_format(file) != "dicom":
            yield _Source(file, f"file:{file}", lambda file=file: read_image(file))  # type: ignore[misc]


def _dicom_series(folder: Path, problems: list[Problem], catalog: Catalog | None, cancel: CancelToken | None) -> Iterator[_Source]:
    from medtl.dicom.scan import scan
    from medtl.dicom.series import NON_IMAGE_MODALITIES

    result = scan(folder, catalog=catalog, cancel=cancel)
    problems.extend(Problem(error.path, error.reason) for error in result.errors)
    for patient in result.patients:
        for series in (series for study in patient.studies for series in study.series):
            if series.rows is None or series.modality in NON_IMAGE_MODALITIES:
                continue
            files = list(series.files)
            label = f"series {series.series_number if series.series_number is not None else '?'} ({series.modality or 'no modality'}): "
            yield _Source(files[0].parent, f"dicom:{patient.patient_id}", lambda files=files: _load_dicom_files(files, cancel), label)  # type: ignore[misc]


def _load_dicom_files(files: list[Path], cancel: CancelToken | None) -> Volume:
    from medtl.dicom.series import load_series

    return load_series(files, cancel=cancel)


def problem_lines(problems: Sequence[Problem], limit: int = 20) -> list[str]:
    """Lines for a user: each skipped input with its reason (the first ``limit``), and how many more."""
    lines = [f"skipped {problem}" for problem in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"... and {len(problems) - limit} more skipped input(s)")
    return lines


def counts_text(data: UnlabelledSlices) -> str:
    """One line: how many slices from how many volumes and patients, by modality."""
    modalities = ", ".join(f"{name} {count}" for name, count in Counter(data.modalities).most_common())
    return f"{len(data)} slices from {data.volumes} volume(s) of {data.patients} patient(s) ({modalities or 'no modality'}); {len(data.problems)} input(s) skipped"
