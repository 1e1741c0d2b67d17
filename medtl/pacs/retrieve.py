"""Retrieve a study or a series from a node into the instance store, resumable, then catalogue it.

Before anything is requested, the node is asked how many instances each series holds (one
series-level C-FIND or QIDO-RS answer): a series with none here is fetched whole (one C-GET,
C-MOVE or a streamed WADO-RS). For a series with some here (or a node that does not say how
many), the node is asked which instances it holds, those already stored are left out and the
rest fetched by their UIDs. Every instance is written atomically as it arrives, so an
interrupted retrieve (cancel, a lost connection, a crash) leaves only complete files, and
running it again fetches the rest. Whatever was stored, the study folder is then scanned into
the catalog the study browser reads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from medtl.errors import InvalidRequest, MedtlError
from medtl.pacs import dimse, web
from medtl.pacs.nodes import LocalAE, Node, NodeBook
from medtl.pacs.query import check_uid
from medtl.pacs.storage import BackgroundWriter, InstanceStore
from medtl.progress import CancelToken, ProgressCallback, report

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrieveRequest:
    """What to fetch: a study (all its series) or one series, by C-GET or C-MOVE (DIMSE) or WADO-RS (DICOMweb)."""

    node: Node
    study_uid: str = ""
    series_uid: str = ""
    move: bool = False

    def __post_init__(self) -> None:
        check_uid(self.study_uid, "study_uid")
        check_uid(self.series_uid, "series_uid")
        if not (self.study_uid or self.series_uid):
            raise InvalidRequest("study_uid", "say which study or series to retrieve")
        if self.move and self.node.is_web:
            raise InvalidRequest("move", f"{self.node.name} is a DICOMweb node: C-MOVE is for DIMSE nodes")


@dataclass
class RetrieveResult:
    """Where the instances are and how many were fetched now, found already here, or not sent by the node."""

    folder: Path  # the study folder
    series_folders: list[Path] = field(default_factory=list)
    fetched: int = 0
    already_here: int = 0
    not_received: int = 0


def retrieve(
    request: RetrieveRequest,
    book: NodeBook,
    store: InstanceStore | None = None,
    catalog: Any = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> RetrieveResult:
    """Fetch what ``request`` names that is not stored yet; progress is reported per instance.

    ``catalog``: the :class:`~medtl.dicom.catalog.Catalog` to scan the study into (None: the default one).
    Raises :class:`~medtl.pacs.connection.PacsError` for network trouble and
    :class:`~medtl.progress.Cancelled` on cancel, after cataloguing what was stored.
    """
    store = store or InstanceStore()
    node, local = request.node, book.local
    ask = _Lookups.of(node, local)
    counts: dict[str, int | None] = {}
    if request.series_uid:
        study_uid, counts[request.series_uid] = ask.count_of(request.study_uid, request.series_uid)
        series_uids = [request.series_uid]
    else:
        study_uid = request.study_uid
        series_uids = ask.series_of(study_uid)
        if not series_uids:
            raise MedtlError(f"{node.name}: the study {study_uid} has no series there")
    store.remove_leftovers(study_uid)
    result = RetrieveResult(store.study_folder(study_uid), [store.series_folder(study_uid, uid) for uid in series_uids])
    plans = []
    for series_uid in series_uids:
        if cancel is not None:
            cancel.raise_if_cancelled()
        count = counts[series_uid] if series_uid in counts else ask.count_of(study_uid, series_uid)[1]
        if count is not None and not store.present(study_uid, series_uid):
            plans.append((series_uid, None, count))  # none here: the whole series, without listing its instances first
        else:
            listed = ask.instances_of(study_uid, series_uid)[1]
            missing = store.missing(study_uid, series_uid, listed)
            result.already_here += len(listed) - len(missing)
            if missing:
                plans.append((series_uid, None if len(missing) == len(listed) else missing, len(missing)))
    wanted = sum(count for *_, count in plans)
    counter = _Counter(progress, wanted)
    report(progress, 0, wanted, "retrieving")
    try:
        _fetch(request, local, book, study_uid, plans, store, counter, cancel)
    finally:
        result.fetched = counter.done
        result.not_received = max(0, wanted - counter.done)
        if result.folder.is_dir():
            _catalogue(result.folder, catalog)
    log.info("retrieved %d instance(s) from %s (%d already here, %d not received)", result.fetched, node.name, result.already_here, result.not_received)
    return result


class _Counter:
    """Counts stored instances (from the writer threads) and reports each."""

    def __init__(self, progress: ProgressCallback | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0
        self._lock = threading.Lock()

    def __call__(self, _: object = None) -> None:
        with self._lock:
            self.done += 1
            report(self.progress, self.done, self.total, f"instance {self.done} of {self.total}")


class _Lookups(NamedTuple):
    """The questions a retrieve asks the node, answered by DIMSE or DICOMweb."""

    series_of: Callable[[str], list[str]]
    count_of: Callable[[str, str], tuple[str, int | None]]
    instances_of: Callable[[str, str], tuple[str, list[str]]]

    @classmethod
    def of(cls, node: Node, local: LocalAE) -> _Lookups:
        if node.is_web:
            return cls(partial(web.series_of, node), partial(web.count_of, node), partial(web.instances_of, node))
        return cls(partial(dimse.series_of, node, local), partial(dimse.count_of, node, local), partial(dimse.instances_of, node, local))


def _fetch(
    request: RetrieveRequest, local: LocalAE, book: NodeBook, study_uid: str, plans: list[tuple[str, list[str] | None, int]],
    store: InstanceStore, counter: _Counter, cancel: CancelToken | None,
) -> None:  # fmt: skip
    node = request.node
    if not plans:
        return
    with BackgroundWriter(store, counter) as writer:
        if node.is_web:
            for series_uid, sop_uids, _ in plans:
                web.retrieve(node, study_uid, series_uid, sop_uids, writer.encoded, cancel)
            return
        receiver = dimse.Receiver(writer, cancel)
        if not request.move:
            for series_uid, sop_uids, _ in plans:
                dimse.c_get(node, local, study_uid, series_uid, sop_uids, receiver)
            return
        with dimse.StorageSCP(local, book.accepted_calling_titles(), node.timeout) as scp:
            for series_uid, sop_uids, _ in plans:
                dimse.c_move(node, local, scp, study_uid, series_uid, sop_uids, receiver)


def _catalogue(folder: Path, catalog: Any) -> None:
    """Scan ``folder`` into ``catalog`` (None: the default catalog), as `medtl scan` does."""
    from medtl.dicom.catalog import Catalog
    from medtl.dicom.scan import scan

    scan(folder, catalog=catalog if catalog is not None else Catalog(), workers=1)
