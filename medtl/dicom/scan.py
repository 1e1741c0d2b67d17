"""Scan a folder for DICOM: walk it, read the headers that changed, group them patient -> study -> series.

Header parsing is CPU-bound Python, so large batches of files are read by a pool of processes
(threads would share one interpreter lock); small batches are read in this process, where
starting a pool would cost more than it saves.
With a :class:`Catalog`, files whose size and mtime are unchanged are not read at all, and a
folder whose listing (paths, sizes, mtimes) is unchanged gets its last result back whole.
pydicom is imported only when a file must be read: a re-scan of an unchanged folder never needs it.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from medtl import __version__
from medtl.dicom.catalog import Catalog, CatalogEntry, Outcome, listing_digest
from medtl.dicom.messages import describe
from medtl.dicom.records import InstanceHeader, PatientInfo, ScanProblem, ScanResult, SeriesInfo, StudyInfo
from medtl.dicom.walk import list_files
from medtl.errors import DicomReadError, MedtlError
from medtl.gc_pause import gc_paused
from medtl.progress import CancelToken, ProgressCallback, report

if TYPE_CHECKING:  # pragma: no cover
    import multiprocessing.context

log = logging.getLogger(__name__)

POOL_THRESHOLD = 600  # fewer files than this are read in-process: starting workers would cost more than they save
_FILES_PER_WORKER = 300
_BATCH_RANGE = (16, 256)
_ORIENTATION_DECIMALS = 3
# Bump when grouping, sorting or warnings change: results the catalog remembers from other versions are not used.
_RESULT_VERSION = f"medtl {__version__}, scan results 2"  # 2: files sharing a SOP Instance UID stay unless identical

ReadResult = tuple[str, CatalogEntry, bool]  # path, what was read, whether the catalog may remember it


def scan(
    path: Path,
    catalog: Catalog | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    workers: int | None = None,
) -> ScanResult:
    """Find the DICOM under ``path`` (a folder, searched recursively, or one file).

    ``workers``: processes reading headers (None: :func:`default_workers`; 1: this process).
    Raises :class:`MedtlError` if ``path`` does not exist or cannot be read, and
    :class:`medtl.progress.Cancelled` if ``cancel`` is set (what was read so far is remembered).
    """
    started = time.perf_counter()
    if catalog is not None:
        _forget_what_is_gone(catalog, Path(path))
    root = _checked_root(Path(path))
    with gc_paused():  # everything a re-scan of an unchanged folder does
        files, problems = list_files(root, cancel)
        listing = None
        if catalog is not None:
            for own in catalog.own_files():
                files.pop(own, None)
            if not problems:  # a folder the walk could not list may hold changes the listing does not show
                listing = listing_digest(files, _RESULT_VERSION)
        result = catalog.result(root, listing) if catalog is not None and listing is not None else None
    if result is None:
        result = _scan_files(root, files, problems, catalog, listing, workers, progress, cancel)
    result.files_seen = len(files)
    log.info(
        "scanned %s: %d files, %d read, %d not DICOM, %d problems, %d duplicates in %.2f s",
        root, result.files_seen, result.files_read, result.skipped_non_dicom, len(result.errors), result.duplicates,
        time.perf_counter() - started,
    )  # fmt: skip
    return result


def _scan_files(
    root: Path,
    files: dict[str, tuple[int, int]],
    walk_problems: list[ScanProblem],
    catalog: Catalog | None,
    listing: str | None,
    workers: int | None,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> ScanResult:
    """Scan file by file: read the files the catalog does not know as they are now, and group them all.

    The catalog remembers the result under ``listing`` when no file is to be read again next time.
    """
    known = catalog.entries_under(root) if catalog is not None else {}
    outcomes = {file: known[file].outcome for file in files if _unchanged(known.get(file), files[file])}
    to_read = [file for file in files if file not in outcomes]
    walked = len(files)
    fresh = _read_and_remember(to_read, files, known, catalog, workers, progress, cancel)
    outcomes.update((file, entry.outcome) for file, entry, _ in fresh)
    result = _result(outcomes, walk_problems)
    result.files_read = len(fresh)
    # files found only through a DICOMDIR are not in the listing, so their changes would go unseen
    if catalog is not None and listing is not None and len(files) == walked and all(remember for _, _, remember in fresh):
        catalog.remember_result(root, listing, result)
    return result


def _unchanged(entry: CatalogEntry | None, size_and_mtime: tuple[int, int]) -> bool:
    return entry is not None and (entry.size, entry.mtime_ns) == size_and_mtime


def _read_and_remember(
    to_read: list[str],
    files: dict[str, tuple[int, int]],
    known: dict[str, CatalogEntry],
    catalog: Catalog | None,
    workers: int | None,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> list[ReadResult]:
    """Read ``to_read``; the catalog remembers what was read, even when cancelled, and forgets deleted files."""
    fresh: list[ReadResult] = []
    completed = False
    try:
        for results in _read(to_read, files, workers, progress, cancel):
            fresh.extend(results)
        completed = True
    finally:
        if catalog is not None:
            deleted = known.keys() - files.keys() if completed else ()
            catalog.update(((file, entry) for file, entry, remember in fresh if remember), forget=deleted)
    return fresh


def _forget_what_is_gone(catalog: Catalog, path: Path) -> None:
    """The catalog forgets ``path`` if it is gone, and every other scanned folder that is gone (it holds patients' names)."""
    try:
        if not path.exists():
            catalog.forget(path.resolve())
        catalog.forget_missing()
    except MedtlError as error:  # busy: the next scan forgets them
        log.warning("%s", error)


def _checked_root(path: Path) -> Path:
    if not path.exists():
        raise MedtlError(f"{path}: no such file or folder")
    root = path.resolve()
    if not os.access(root, os.R_OK | (os.X_OK if root.is_dir() else 0)):
        raise MedtlError(f"{path}: permission denied (cannot read it)")
    return root


def _read(
    paths: list[str],
    files: dict[str, tuple[int, int]],
    workers: int | None,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> Iterator[list[ReadResult]]:
    """Read ``paths`` (DICOMDIRs first, here; the rest in batches), yielding results as they come."""
    directories = _dicomdirs(paths)
    if directories:
        listed = [_read_dicomdir(path, files) for path in directories]
        yield [result for result, _ in listed]
        skip = set(directories)
        extra = sorted({file for _, found in listed for file in found} - set(paths))
        paths = [path for path in paths if path not in skip] + extra
    total, done = len(paths), 0
    report(progress, 0, total, "reading headers")
    for results in _read_batches(paths, workers, cancel):
        done += len(results)
        report(progress, done, total, "reading headers")
        yield results


def _dicomdirs(paths: list[str]) -> list[str]:
    if not paths:
        return []
    from medtl.dicom import dicomdir  # imports pydicom: only when there are files to read

    return [path for path in paths if dicomdir.is_dicomdir(path)]


def _read_dicomdir(path: str, files: dict[str, tuple[int, int]]) -> tuple[ReadResult, list[str]]:
    """Check one DICOMDIR; also returns the referenced files the walk did not find (unlistable folders)."""
    from medtl.dicom import dicomdir

    found, problem = dicomdir.check(Path(path))
    size, mtime_ns = files[path]
    unseen = []
    for file in map(str, found):
        if file not in files:
            try:
                stat = os.stat(file)
            except OSError:
                continue  # gone since the DICOMDIR was read; nothing to scan
            files[file] = (stat.st_size, stat.st_mtime_ns)
            unseen.append(file)
    return (path, CatalogEntry(size, mtime_ns, problem), True), unseen


def _read_batches(paths: list[str], workers: int | None, cancel: CancelToken | None) -> Iterator[list[ReadResult]]:
    workers = _worker_count(len(paths), workers)
    size = min(max(math.ceil(len(paths) / (workers * 8)), _BATCH_RANGE[0]), _BATCH_RANGE[1])
    batches = [paths[start : start + size] for start in range(0, len(paths), size)]
    workers = min(workers, len(batches))
    if workers <= 1:
        for batch in batches:
            if cancel is not None:
                cancel.raise_if_cancelled()
            yield read_batch(batch)
        return
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait  # only when reading in a pool

    with ProcessPoolExecutor(workers, mp_context=_pool_context()) as pool:
        pending: set[Future[list[ReadResult]]] = {pool.submit(read_batch, batch) for batch in batches}
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                if cancel is not None:
                    cancel.raise_if_cancelled()
                for future in finished:
                    yield future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _worker_count(files: int, requested: int | None) -> int:
    return max(1, requested) if requested is not None else default_workers(files)


def default_workers(files: int) -> int:
    """The worker processes a scan uses to read ``files`` headers: 1 (this process) for few files or a busy machine.

    Sized by the CPUs not already busy (CPU count less load average): on a loaded machine, worker
    processes only add their overhead (about 25 % more CPU in all) to the same share of CPU time.
    """
    if files < POOL_THRESHOLD:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(round(cpus - load), files // _FILES_PER_WORKER))


def _pool_context() -> multiprocessing.context.BaseContext:
    """How to start the workers: the cheapest way that is safe here.

    fork on Linux, called from the main thread with no other Python threads (the CLI): workers
    start in milliseconds. forkserver otherwise (the app scans from a worker thread, and forking a
    threaded process can deadlock): its server starts once, with the header reader preloaded, then
    forks workers. spawn elsewhere (macOS, Windows).
    """
    import multiprocessing

    alone = threading.current_thread() is threading.main_thread() and threading.active_count() == 1
    if sys.platform.startswith("linux") and alone:
        return multiprocessing.get_context("fork")
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["medtl.dicom.header"])
        return context
    return multiprocessing.get_context("spawn")


def read_batch(paths: list[str]) -> list[ReadResult]:
    """Read the headers of ``paths`` (runs in a worker process; module-level so that it pickles)."""
    return [_read_one(path) for path in paths]


def _read_one(path: str) -> ReadResult:
    from medtl.dicom.header import read_header  # imports pydicom: only when there are files to read

    try:
        stat = os.stat(path)
    except OSError as error:
        return path, CatalogEntry(0, 0, ScanProblem(Path(path), f"cannot read it ({error.strerror or error})")), False
    try:
        outcome: Outcome = read_header(Path(path), stat)
    except DicomReadError as error:
        # permission or I/O errors may be fixed without touching the file: read it again next time
        remember = not isinstance(error.__cause__, OSError)
        return path, CatalogEntry(stat.st_size, stat.st_mtime_ns, ScanProblem(error.path, error.reason)), remember
    except Exception as error:  # a bug met on one odd file must not end the scan of thousands: report it, retry next time
        log.warning("unexpected error reading %s", path, exc_info=True)
        problem = ScanProblem(Path(path), f"unexpected error reading the header ({describe(error)})")
        return path, CatalogEntry(stat.st_size, stat.st_mtime_ns, problem), False
    return path, CatalogEntry(stat.st_size, stat.st_mtime_ns, outcome), True


def _result(outcomes: dict[str, Outcome], walk_problems: list[ScanProblem]) -> ScanResult:
    headers, problems = [], list(walk_problems)
    result = ScanResult()
    for path in sorted(outcomes):
        outcome = outcomes[path]
        if isinstance(outcome, InstanceHeader):
            headers.append(outcome)
        elif isinstance(outcome, ScanProblem):
            problems.append(outcome)
        else:
            result.skipped_non_dicom += 1
    result.patients, result.duplicates = _hierarchy(headers)
    result.errors = sorted(problems, key=lambda problem: str(problem.path))
    return result


def _hierarchy(headers: list[InstanceHeader]) -> tuple[list[PatientInfo], int]:
    """Group ``headers`` (sorted by path) into sorted patients, studies and series; returns them and the duplicate count."""
    patients: dict[str, PatientInfo] = {}
    studies: dict[tuple[str, str], StudyInfo] = {}
    series: dict[tuple[str, str, str], SeriesInfo] = {}
    first_by_sop: dict[str, InstanceHeader] = {}
    duplicates: dict[tuple[str, str, str], int] = defaultdict(int)
    for header in headers:
        key = (header.patient_id, header.study_uid, header.series_uid)
        first = first_by_sop.get(header.sop_instance_uid)
        if first is not None and _is_copy(first, header):
            duplicates[key] += 1
            continue
        first_by_sop.setdefault(header.sop_instance_uid, header)
        if key not in series:
            patient = patients.get(header.patient_id)
            if patient is None:
                patient = patients[header.patient_id] = PatientInfo(header.patient_id, header.patient_name)
            study = studies.get(key[:2])
            if study is None:
                study = studies[key[:2]] = StudyInfo(header.study_uid, header.study_date, header.study_description)
                patient.studies.append(study)
            series[key] = SeriesInfo(header.series_uid, header.modality, header.series_description, header.series_number)
            study.series.append(series[key])
        series[key].instances.append(header)
    for key, info in series.items():
        info.warnings = _series_warnings(info, duplicates.get(key, 0))
    return _sorted(list(patients.values())), sum(duplicates.values())


def _is_copy(first: InstanceHeader, other: InstanceHeader) -> bool:
    """Whether ``other`` is a byte-for-byte copy of ``first`` (same SOP Instance UID).

    Files that share the UID but differ both stay in their series, so that loading it compares their
    pixels and refuses the series when they differ: the scan cannot tell which file is right.
    """
    if dataclasses.replace(first, path=other.path, mtime_ns=other.mtime_ns) != other:
        return False
    try:
        with open(first.path, "rb") as a, open(other.path, "rb") as b:
            while True:
                chunk = a.read(1 << 20)
                if chunk != b.read(1 << 20):
                    return False
                if not chunk:
                    return True
    except OSError:
        return False


def _sorted(patients: list[PatientInfo]) -> list[PatientInfo]:
    """Patients by ID, studies by date and UID, series by number and UID, instances by number (then path)."""
    for patient in patients:
        patient.studies.sort(key=lambda study: (study.study_date, study.study_uid))
        for study in patient.studies:
            study.series.sort(key=lambda s: (s.series_number is None, s.series_number or 0, s.series_uid))
            for series in study.series:
                series.instances.sort(key=lambda h: (h.instance_number is None, h.instance_number or 0))  # stable sort
    return sorted(patients, key=lambda patient: (patient.patient_id, patient.patient_name))


def _series_warnings(series: SeriesInfo, duplicates: int) -> list[str]:
    warnings = []
    if duplicates:
        warnings.append(f"{duplicates} duplicate instance(s): identical copies of a file, one is used")
    shared = len(series.instances) - len({h.sop_instance_uid for h in series.instances})
    if shared:
        warnings.append(f"{shared} file(s) share a SOP Instance UID with another file but differ from it; one of them is wrong")
    orientations = {h.image_orientation for h in series.instances if h.image_orientation}
    if len(orientations) > 1:  # exact comparison first: rounding every instance is the slow path
        orientations = {tuple(round(v, _ORIENTATION_DECIMALS) for v in orientation) for orientation in orientations}
    if len(orientations) > 1:
        warnings.append(f"mixed orientations (localizer?): {len(orientations)} different image orientations")
    sizes = {(h.rows, h.columns) for h in series.instances if h.rows is not None}
    if len(sizes) > 1:
        warnings.append(f"instances of different sizes: {', '.join(f'{r}x{c}' for r, c in sorted(sizes))}")
    return warnings


# --- segmentations ---------------------------------------------------------------------------

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"


def segmentations_for(result: ScanResult, series_uid: str) -> list[Path]:
    """The DICOM SEG files found by a scan that segment the series ``series_uid``: label layers to offer with that series
    (:func:`medtl.labels.mask_import.read_mask` reads one onto the series' grid). A SEG that cannot be read is left out."""
    return [
        instance.path
        for series in result.all_series()
        for instance in series.instances
        if instance.sop_class_uid == SEGMENTATION_STORAGE and series_uid in referenced_series(instance.path, instance.size, instance.mtime_ns)
    ]


@functools.lru_cache(maxsize=1024)
def referenced_series(path: Path, size: int = 0, mtime_ns: int = 0) -> tuple[str, ...]:
    """The Series Instance UIDs a DICOM object references (its ReferencedSeriesSequence); empty when it cannot be read.
    ``size`` and ``mtime_ns`` (from the scan) key the cache, so a changed file is read again."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["ReferencedSeriesSequence"])
        return tuple(str(item.SeriesInstanceUID) for item in ds.get("ReferencedSeriesSequence", []) if "SeriesInstanceUID" in item)
    except Exception:  # noqa: BLE001 - a damaged SEG is simply not offered; scanning reports broken files
        return ()
