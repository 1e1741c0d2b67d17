"""The editable label of a shown series and the :class:`LabelStore`: find a saved label, save the one edited, list
its earlier saves and restore one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from medtl.dicom.volume import Volume
from medtl.errors import MedtlError
from medtl.labels.store import LabelStore, LabelVersion, SavedLabel
from medtl.progress import CancelToken, ProgressCallback
from ui.models.viewer_model import ViewerModel

SaveCall = Callable[[ProgressCallback, CancelToken], SavedLabel]
RestoreCall = Callable[[ProgressCallback, CancelToken], tuple[SavedLabel, Volume]]


def attach_saved_label(model: ViewerModel, store: LabelStore) -> None:
    """Make the label saved for ``model`` 's series (if any) its editable label. Runs in the loading worker."""
    try:
        found = store.load_for(model.volume)
    except MedtlError as error:
        model.volume.warnings.append(str(error))
        return
    if found is None:
        return
    saved, mask = found
    model.edit_label(mask.array, saved.labels, "label (saved)", dirty=False, annotated=saved.annotated)


def save_call(model: ViewerModel, store: LabelStore) -> tuple[SaveCall, int]:
    """An engine call that saves a snapshot of ``model`` 's editable label (taken now, so editing may go on while it
    runs), and the edit count the snapshot holds."""
    editor = model.editor
    if editor is None:
        raise MedtlError("there is no editable label to save: accept a prediction or start a new label first")
    mask, names, edits, annotated = editor.layer.mask.copy(), dict(editor.names), editor.edits, editor.annotated
    volume, files, description = model.volume, model.files, model.label.series_description

    def call(progress: ProgressCallback, cancel: CancelToken) -> SavedLabel:
        progress(0, 0, "saving the label")
        return store.save_snapshot(id(editor), edits, mask, volume, files, names, description, annotated)  # an older snapshot never overwrites a newer one

    return call, edits


def series_uids(model: ViewerModel) -> tuple[str, str]:
    """(study UID, series UID) of the shown series, as the label store files its label."""
    meta = model.volume.metadata
    return str(meta.get("study_uid", "")), str(meta.get("series_uid", ""))


def label_versions(model: ViewerModel, store: LabelStore) -> list[LabelVersion]:
    """The earlier saves of the shown series' label, newest first (none for an image without a series UID)."""
    study, series = series_uids(model)
    return list(reversed(store.versions(study, series))) if series else []


def version_text(version: LabelVersion) -> str:
    """``"version 3, saved 2025-03-04 05:06:07"`` (local time)."""
    return f"version {version.number}, saved {datetime.fromtimestamp(version.saved_at):%Y-%m-%d %H:%M:%S}"


def restore_call(model: ViewerModel, store: LabelStore, number: int) -> RestoreCall:
    """An engine call that makes version ``number`` the shown series' label again (the label it replaces becomes the
    newest version, so restoring is undone by restoring that one) and reads it back on the series' grid."""
    volume = model.volume
    study, series = series_uids(model)

    def call(progress: ProgressCallback, cancel: CancelToken) -> tuple[SavedLabel, Volume]:
        progress(0, 0, f"restoring label version {number}")
        store.restore(study, series, number)
        found = store.load_for(volume)
        if found is None:
            raise MedtlError(f"{store.folder(study, series)}: the restored label has no mask")
        return found

    return call
