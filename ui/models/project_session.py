"""`ProjectSession`: the project the app works on, the reader's name, and the shown series' label saved into it.

Pure Python (no Qt): the window binds it. One project is open at a time, for writing unless another program
holds its lock (then :attr:`ProjectSession.notice` says who, since when; a stale lock can be taken over). The
reader's name (the OS user unless the user sets one) is who the audit log names and whose masks are loaded and
saved, so two readers of one series keep separate versions.

A save records the tools used since the previous save (the window reports each edit with :meth:`note_edit`:
brush, eraser, box prompt, accepted prediction of run X...), the label values the edit changed (against the
mask as last loaded or saved) and the slices it touched, in one :meth:`~medtl.project.Project.save_mask`.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from medtl.data.sparse import Annotated
from medtl.dicom.volume import Volume
from medtl.errors import MedtlError
from medtl.labels.store import LabelStore, sole_series_folder
from medtl.progress import CancelToken, ProgressCallback
from medtl.project import MaskVersion, Project
from medtl.project.lock import LockHolder, ProjectLock, os_user, pid_alive
from medtl.project.project import DATABASE_NAME, IMAGES_FOLDER, series_key
from medtl.project.records import BOX_PROMPT, BRUSH, ERASER, POLYGON, REGION_GROW, THRESHOLD, LabelDefinition, SeriesRecord
from ui.models.class_labels import MAX_CLASS, ClassLabels
from ui.models.label_editor import LabelEditor
from ui.models.viewer_model import ViewerModel

ProjectSaveCall = Callable[[ProgressCallback, CancelToken], "MaskVersion | None"]

EDITOR_TOOLS = {"brush": BRUSH, "eraser": ERASER, "lasso": POLYGON, "threshold": THRESHOLD, "grow": REGION_GROW, "box": BOX_PROMPT}
"""The audit log's name of each of the editor's tools (``Tool.value``); a tool not listed is recorded by its own name."""


@dataclass(frozen=True)
class HistoryRow:
    """One audit entry as the label history table shows it."""

    when: str
    who: str
    tool: str
    label: str
    reader: str
    version: str
    detail: str


def layer_name(version: MaskVersion) -> str:
    """The name of the label layer that holds a reader's saved ``version``: ``label (Dr Ada, version 3)``."""
    return f"label ({version.reader}, version {version.version})"


class ProjectSession:
    """The open project (None: none could be opened; labels then go to the label store) and the reader's name."""

    def __init__(self, reader: str | None = None) -> None:
        self.project: Project | None = None
        self._reader = (reader or "").strip() or None
        self._guard = threading.Lock()
        self._pending: list[tuple[str, str]] = []  # (tool, detail) of the edits since the last save, in order
        self._baseline: tuple[int, np.ndarray, Annotated] | None = None  # (editor id, mask, annotated) as last loaded or saved
        self._written: dict[int, int] = {}  # editor id -> the edit count of the newest snapshot saved
        self._claimed: dict[int, int] = {}  # editor id -> the edit count of the newest snapshot a save has begun to write

    # --- opening -----------------------------------------------------------------------------

    @property
    def reader(self) -> str:
        """Who edits: the name set in the app, else the OS user."""
        return self._reader or os_user()

    @staticmethod
    def reader_named(name: str | None) -> str:
        """The reader that ``name`` stands for: itself, stripped; empty: the OS user."""
        return (name or "").strip() or os_user()

    def set_reader(self, name: str | None) -> str:
        """Name the reader (empty: the OS user) for the audit log and the masks loaded and saved; returns the name."""
        self._reader = (name or "").strip() or None
        if self.project is not None:
            self.project.user = self.reader
        return self.reader

    def open(self, folder: Path, take_over: bool = False) -> Project:
        """Open the project in ``folder`` (closing the one open): for writing unless another program holds it."""
        if self.project is not None and self.project.folder == Path(folder).expanduser().absolute():
            self.close()  # opening it again: its lock must not count as another program's
        return self.use(Project.open(folder, user=self.reader, take_over=take_over))

    def create(self, folder: Path) -> Project:
        """Create a new project in ``folder`` and open it."""
        return self.use(Project.create(folder, user=self.reader))

    def open_at_start(self, last: Path | None, store: LabelStore | None = None) -> Project:
        """The project to work on at start, not yet in use (:meth:`use` it): ``last`` (the one open when the app
        closed, if it is still there), else the default project, created on first use with the label store's labels moved in. May take a
        while (the first time, the store's series are scanned): run it in a worker."""
        from medtl.project.from_label_store import open_default_project

        if last is not None and (last / DATABASE_NAME).is_file():
            project = Project.open(last, user=self.reader)
        else:  # none yet, or moved away since: the default one
            project = open_default_project(None, store)
        if project.read_only and _left_by_a_crash(ProjectLock(project.folder).holder(), {self.reader, os_user()}):
            project.close()  # this user's medtl on this machine ended without closing it: go on where it stopped
            project = Project.open(project.folder, user=self.reader, take_over=True)
        project.user = self.reader
        return project

    def use(self, project: Project) -> Project:
        """Work on ``project`` from now on (closing the one open)."""
        self.close()
        self.project = project
        return project

    def close(self) -> None:
        """Close the project (releasing its lock)."""
        project, self.project = self.project, None
        self._baseline, self._pending, self._written, self._claimed = None, [], {}, {}
        if project is not None:
            project.close()

    @property
    def read_only(self) -> bool:
        return self.project is None or self.project.read_only

    @property
    def notice(self) -> str | None:
        """Why the open project cannot be written (who holds it, since when), or None."""
        return self.project.notice if self.project is not None else None

    def lock_holder(self) -> LockHolder | None:
        """Who holds the open project's lock now (None: nobody, or no project)."""
        return ProjectLock(self.project.folder).holder() if self.project is not None else None

    def can_take_over(self) -> bool:
        """Read-only because of a stale lock, which the user may take over."""
        holder = self.lock_holder() if self.project is not None and self.project.read_only else None
        return holder is not None and holder.stale_because is not None

    def take_over(self) -> Project:
        """Open the project again, taking over its stale lock."""
        if self.project is None:
            raise MedtlError("no project is open")
        return self.open(self.project.folder, take_over=True)

    def refresh_lock(self) -> None:
        """Keep the lock fresh (call on a timer while the app is open)."""
        if self.project is not None and not self.project.read_only:
            self.project.refresh_lock()

    # --- series and labels -------------------------------------------------------------------

    def writable_for(self, model: ViewerModel) -> bool:
        """Whether the shown series' label is saved into the project (writable, and the series has a UID)."""
        return not self.read_only and bool(_series_uid(model))

    def add_folder(self, path: Path) -> tuple[list[SeriesRecord], list[str]]:
        """Record the image series of the DICOM folder ``path`` (and, in words, what was left out)."""
        return self._writable().add_dicom(path)

    def note_edit(self, tool: str, detail: str = "") -> None:
        """An edit of the shown label was made with ``tool`` (``detail``: e.g. ``run <path>`` of an accepted prediction)."""
        with self._guard:
            if (tool, detail) not in self._pending:
                self._pending.append((tool, detail))

    def attach(self, model: ViewerModel) -> bool:
        """Make the reader's newest mask of the series (if the project has one) its editable label; False when there
        is none. Runs in the loading worker, before the model is shown."""
        found = self.reader_mask(model)
        if found is not None:
            self.edit(model, *found)
        return found is not None

    def reader_mask(self, model: ViewerModel) -> tuple[MaskVersion, Volume] | None:
        """The reader's newest mask of the series and its version, read from the project (None: there is none, or it
        does not fit the series, which is noted in the volume's warnings). Safe in a worker: it does not change ``model``."""
        uid, project = _series_uid(model), self.project
        version = project.mask(uid, self.reader) if project is not None and uid and _holds(project, uid) else None
        if project is None or version is None:
            return None
        mask = project.load_mask(version)
        if mask.shape != model.volume.shape:
            model.volume.warnings.append(f"{version.path}: the saved mask has shape {mask.shape}, the series {model.volume.shape}; not shown")
            return None
        return version, mask

    def edit(self, model: ViewerModel, version: MaskVersion, mask: Volume) -> None:
        """Make ``mask`` (the saved ``version``) the editable label of ``model``, with the project's label names and colours."""
        assert self.project is not None
        labels = self.project.labels()
        names = {label.value: label.name for label in labels}
        editor = model.edit_label(mask.array, names, layer_name(version), dirty=False, annotated=version.annotated)
        editor.layer.colors.update({label.value: label.colour for label in labels})
        with self._guard:
            self._baseline, self._pending = (id(editor), mask.array, version.annotated), []

    def saved_edits(self, editor: LabelEditor) -> int:
        """The edit count of ``editor`` 's newest snapshot in the project (-1: none saved)."""
        with self._guard:
            return self._written.get(id(editor), -1)

    def save_call(self, model: ViewerModel, fallback_tool: str) -> tuple[ProjectSaveCall, int]:
        """An engine call that saves a snapshot of the shown label (taken now) as the reader's next mask version of the
        series, recording the tools noted since the last save (``fallback_tool`` when none was), and the edit count the
        snapshot holds. The call returns None when a newer snapshot was saved before it, or when the snapshot changes
        nothing in the reader's newest version (e.g. Ctrl+S on a label as it came back, an eraser stroke on nothing)."""
        editor = model.editor
        if editor is None:
            raise MedtlError("there is no editable label to save: accept a prediction or start a new label first")
        project, reader = self._writable(), self.reader
        mask, names, edits, annotated = editor.layer.mask.copy(), dict(editor.names), editor.edits, editor.annotated
        colours = {value: tuple(int(c) for c in colour) for value, colour in editor.layer.colors.items()}
        key, volume, files, uid = id(editor), model.volume, model.files, _series_uid(model)
        with self._guard:
            noted = list(self._pending)

        def call(progress: ProgressCallback, cancel: CancelToken) -> MaskVersion | None:
            progress(0, 0, f"saving the label into the project {project.name}")
            with self._guard:
                if max(self._written.get(key, -1), self._claimed.get(key, -1)) >= edits:
                    return None  # an older snapshot never becomes the newest version, nor is the same one saved twice
                self._claimed[key] = edits
            try:
                return write()
            except BaseException:
                with self._guard:
                    self._claimed[key] = self._written.get(key, -1)  # let a later save of these edits try again
                raise

        def write() -> MaskVersion | None:
            _ensure_series(project, uid, volume, files)
            _define_labels(project, names, colours)
            base_mask, base_annotated = self._base(project, key, uid, reader, mask.shape)
            values, touched = _changes(base_mask, mask, base_annotated, annotated)
            if not values and not touched.count() and not touched.complete and project.mask(uid, reader) is not None:
                with self._guard:  # the reader's newest version holds it all: a copy would only fill the history
                    self._baseline, self._written[key] = (key, mask, annotated), edits
                    self._pending = [entry for entry in self._pending if entry not in noted]
                return None
            tools = list(dict.fromkeys(tool for tool, _ in noted)) or [fallback_tool]
            detail = "; ".join(dict.fromkeys(detail for _, detail in noted if detail))
            version = project.save_mask(
                uid, mask, volume, tool=" + ".join(tools), reader=reader, value=values or None, touched=touched, annotated=annotated, detail=detail
            )
            with self._guard:
                self._baseline, self._written[key] = (key, mask, annotated), edits
                self._pending = [entry for entry in self._pending if entry not in noted]
            return version

        return call, edits

    def _base(self, project: Project, key: int, uid: str, reader: str, shape: tuple[int, ...]) -> tuple[np.ndarray, Annotated]:
        """The mask (and its annotated slices) a save is compared with: the editor's as last loaded or saved, else the
        reader's newest in the project, else an empty one."""
        with self._guard:
            baseline = self._baseline
        if baseline is not None and baseline[0] == key and baseline[1].shape == shape:
            return baseline[1], baseline[2]
        previous = project.mask(uid, reader)
        if previous is not None:
            mask = project.load_mask(previous).array
            if mask.shape == shape:
                return mask, previous.annotated
        return np.zeros(shape, np.uint8), Annotated()

    def _writable(self) -> Project:
        if self.project is None:
            raise MedtlError("no project is open: open or create one (File menu)")
        if self.project.read_only:
            raise MedtlError(f"cannot change the project: {self.project.notice}")
        return self.project

    # --- label definitions and class labels ---------------------------------------------------

    def label_definitions(self, shown: dict[str, object]) -> dict[str, object] | None:
        """What the label table should show for an editable label whose definitions are ``shown``
        (:meth:`~ui.models.label_definitions.LabelDefinitions.to_dict`): the project's labels (names, colours, hidden,
        locked), then the label's own values the project does not define; None when no project is open or it defines none."""
        if self.project is None:
            return None
        labels = [_definition_entry(label) for label in self.project.labels()]
        if not labels:
            return None
        taken = {int(entry["value"]) for entry in labels}  # type: ignore[call-overload]
        names = {str(entry["name"]).lower() for entry in labels}
        for entry in shown.get("labels", []):  # type: ignore[union-attr]
            if int(entry["value"]) not in taken:
                name = str(entry["name"])
                labels.append({**entry, "name": f"{name} ({entry['value']})" if name.lower() in names else name})
        return {"labels": sorted(labels, key=lambda entry: int(entry["value"]))}  # type: ignore[call-overload]

    def write_definitions(self, data: dict[str, object]) -> None:
        """Make the project's label definitions those of ``data`` (the label table's
        :meth:`~ui.models.label_definitions.LabelDefinitions.to_dict`): delete, define, rename, recolour, hide, lock, each
        recorded in the audit log."""
        project = self._writable()
        wanted = {int(entry["value"]): entry for entry in data.get("labels", [])}  # type: ignore[union-attr]
        have = {label.value: label for label in project.labels()}
        for value in sorted(have.keys() - wanted.keys()):
            project.delete_label(value)
        for value, entry in sorted(wanted.items()):
            name, colour = str(entry["name"]), tuple(int(c) for c in entry["colour"])
            hidden, locked = bool(entry.get("hidden")), bool(entry.get("locked"))
            old = have.get(value) or project.define_label(name, colour, value)  # type: ignore[arg-type]
            if old.name != name:
                project.rename_label(value, name)
            if old.colour != colour:
                project.set_label_colour(value, colour)  # type: ignore[arg-type]
            if old.hidden != hidden:
                project.set_label_hidden(value, hidden)
            if old.locked != locked:
                project.set_label_locked(value, locked)

    def class_labels(self, per_slice: bool = False) -> ClassLabels | None:
        """The reader's class labels in the project (classes numbered by the order they were defined, the first
        :data:`MAX_CLASS`), over every series of the project; None when no project is open."""
        project = self.project
        if project is None:
            return None
        numbers = {name: number for number, name in enumerate(project.classes()[:MAX_CLASS], start=1)}
        series, whole, slices = [], {}, []
        for record in project.series():
            series.append((record.series_uid, int(record.grid.get("slices") or 1)))
            for index, name in project.class_labels(record.series_uid, self.reader).items():
                if name in numbers and index is None:
                    whole[record.series_uid] = numbers[name]
                elif name in numbers:
                    slices.append([record.series_uid, index, numbers[name]])
        classes = {str(n): name for name, n in numbers.items()} or {str(n): name for n, name in ClassLabels().classes.items()}
        return ClassLabels.from_dict({"classes": classes, "per_slice": per_slice, "series": whole, "slices": slices}, series)

    def write_class_labels(self, before: dict[str, object], after: dict[str, object], model: ViewerModel | None) -> None:
        """Write what changed between two :meth:`~ui.models.class_labels.ClassLabels.to_dict` of the class labels
        (classes defined or renamed, series and slices given a class or none) as the reader's; the shown series
        (``model``) is added to the project first when a class is given to it."""
        project, reader = self._writable(), self.reader
        old_classes, classes = _classes(before), _classes(after)
        for number, name in sorted(classes.items()):
            known = project.classes()
            if name in known:
                continue
            if old_classes.get(number) in known and old_classes[number] not in classes.values():
                project.rename_class(old_classes[number], name)
            else:
                project.define_class(name)
        old_items, items = _class_items(before), _class_items(after)
        shown = _series_uid(model) if model is not None else ""
        for (uid, index), number in items.items():
            if old_items.get((uid, index)) != number:
                if uid == shown and model is not None:
                    _ensure_series(project, uid, model.volume, model.files)
                project.set_class(uid, classes[number], slice_index=index, reader=reader)
        for uid, index in old_items.keys() - items.keys():
            project.set_class(uid, None, slice_index=index, reader=reader)

    # --- history, agreement, runs ------------------------------------------------------------

    def history_rows(self, model: ViewerModel) -> list[HistoryRow]:
        """The audit entries of the shown series, newest first."""
        uid, project = _series_uid(model), self.project
        if project is None or not uid:
            return []
        names = {label.value: label.name for label in project.labels()}
        rows = []
        for entry in reversed(project.history(series_uid=uid)):
            label = "" if entry.value is None else f"{entry.value}: {names.get(entry.value, '(deleted)')}"
            when = datetime.fromtimestamp(entry.at).strftime("%Y-%m-%d %H:%M:%S")
            version = "" if entry.mask_version is None else str(entry.mask_version)
            rows.append(HistoryRow(when, entry.who, entry.tool, label, entry.reader or "", version, entry.detail))
        return rows

    def restore_call(self, model: ViewerModel, number: int) -> Callable[[ProgressCallback, CancelToken], tuple[MaskVersion, Volume]]:
        """An engine call that makes the reader's version ``number`` of the shown series' mask the newest again (saved as
        a new version: nothing is lost) and reads it back (:meth:`edit` it in the GUI)."""
        project, uid, reader = self._writable(), _series_uid(model), self.reader

        def call(progress: ProgressCallback, cancel: CancelToken) -> tuple[MaskVersion, Volume]:
            progress(0, 0, f"restoring label version {number}")
            restored = project.restore_mask(uid, number, reader)
            return restored, project.load_mask(restored)

        return call

    def readers_of(self, model: ViewerModel) -> list[str]:
        """The readers who saved a mask of the shown series."""
        uid, project = _series_uid(model), self.project
        if project is None or not uid or not _holds(project, uid):
            return []
        return [reader for reader in project.readers() if project.mask(uid, reader) is not None]

    def agreement(self, model: ViewerModel, reader_a: str, reader_b: str) -> list[tuple[str, float | None]]:
        """Dice per label (``"value name"``, None: neither reader drew it) between two readers' masks of the shown series."""
        from medtl.project.agreement import reader_agreement

        if self.project is None:
            raise MedtlError("no project is open")
        names = {label.value: label.name for label in self.project.labels()}
        dice = reader_agreement(self.project, _series_uid(model), reader_a, reader_b)
        return [(f"{value}: {names.get(value, '(not defined)')}", score) for value, score in dice.items()]

    def link_run(self, run_dir: Path) -> None:
        """Record a run started from the project in it."""
        self._writable().link_run(run_dir)


def _definition_entry(label: LabelDefinition) -> dict[str, object]:
    """A project label as the label table stores one (:meth:`~ui.models.label_definitions.LabelDefinitions.to_dict`)."""
    return {"value": label.value, "name": label.name, "colour": list(label.colour), "hidden": label.hidden, "locked": label.locked}


def _classes(data: dict[str, object]) -> dict[int, str]:
    return {int(number): str(name) for number, name in dict(data.get("classes", {})).items()}  # type: ignore[call-overload]


def _class_items(data: dict[str, object]) -> dict[tuple[str, int | None], int]:
    """(series UID, slice or None for the whole series) -> class number, of a ClassLabels.to_dict."""
    items: dict[tuple[str, int | None], int] = {(str(uid), None): int(n) for uid, n in dict(data.get("series", {})).items()}  # type: ignore[call-overload]
    items.update({(str(uid), int(index)): int(n) for uid, index, n in data.get("slices", [])})  # type: ignore[attr-defined]
    return items


def _series_uid(model: ViewerModel) -> str:
    return str(model.volume.metadata.get("series_uid", "") or "")


def _holds(project: Project, uid: str) -> bool:
    try:
        project.series_record(uid)
    except MedtlError:
        return False
    return True


def _ensure_series(project: Project, uid: str, volume: Volume, files: tuple[Path, ...]) -> None:
    """Record the shown series in the project if it is not there: its DICOM folder, or (an image without DICOM files)
    a NIfTI copy of it in the project."""
    if _holds(project, uid):
        return
    if files:
        project.add_dicom(sole_series_folder(files) or Path(os.path.commonpath([str(f.parent) for f in files])))
        project.series_record(uid)  # the folder must hold the series
        return
    from medtl.export.nifti import write_nifti

    meta = volume.metadata
    copy = write_nifti(volume, project.folder / IMAGES_FOLDER / series_key(uid) / "image.nii.gz")
    patient = str(meta.get("patient_id", "") or "") or None
    project.add_image(SeriesRecord(uid, str(meta.get("study_uid", "")), patient, copy, (), str(meta.get("modality", "")), ""))


def _define_labels(project: Project, names: dict[int, str], colours: dict[int, tuple[int, ...]]) -> None:
    """Define the editor's label values the project does not name yet (with the editor's names and colours)."""
    defined = {label.value: label.name.lower() for label in project.labels()}
    for value, name in sorted(names.items()):
        if value == 0 or value in defined:
            continue
        taken = set(defined.values())
        if name.strip().lower() in taken | {"background", "ignore", ""}:
            name = f"{name.strip() or 'label'} ({value})"
        colour = colours.get(value)
        project.define_label(name, colour=colour if colour is not None and len(colour) == 3 else None, value=value)  # type: ignore[arg-type]
        defined[value] = name.lower()


def _changes(before: np.ndarray, after: np.ndarray, annotated_before: Annotated, annotated_after: Annotated) -> tuple[list[int], Annotated]:
    """The label values an edit changed (either side of every changed voxel, background aside) and the slices it touched:
    axial slices with a changed voxel, and slices newly marked annotated."""
    changed = before != after
    values = sorted((set(np.unique(before[changed]).tolist()) | set(np.unique(after[changed]).tolist())) - {0})
    touched = Annotated(
        tuple(now - earlier for now, earlier in zip(annotated_after.slices, annotated_before.slices)),  # type: ignore[arg-type]
        annotated_after.complete and not annotated_before.complete,
    )
    return [int(v) for v in values], touched.add(0, np.flatnonzero(changed.any(axis=(1, 2))).tolist())


def _left_by_a_crash(holder: LockHolder | None, users: set[str]) -> bool:
    """A lock this user's medtl (``users``: their reader and login names) on this machine left when its process ended
    without closing the project (a crash or a kill): safe to take over at start, unlike a lock held by someone else or
    by a process still running."""
    return holder is not None and holder.host == socket.gethostname() and holder.user in users and not pid_alive(holder.pid)
