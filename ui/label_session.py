"""The editable label of a shown series and the :class:`LabelStore`: find a saved label, save the one edited."""

from __future__ import annotations

from collections.abc import Callable

from medtl.data.images import read_image
from medtl.errors import MedtlError
from medtl.labels.store import LabelStore, SavedLabel
from medtl.progress import CancelToken, ProgressCallback
from ui.viewer_model import ViewerModel

SaveCall = Callable[[ProgressCallback, CancelToken], SavedLabel]


def attach_saved_label(model: ViewerModel, store: LabelStore) -> None:
    """Make the label saved for ``model`` 's series (if any) its editable label. Runs in the loading worker."""
    metadata = model.volume.metadata
    saved = store.find(str(metadata.get("study_uid", "")), str(metadata.get("series_uid", "")))
    if saved is None or not saved.mask.is_file():
        return
    mask = read_image(saved.mask)
    if mask.shape != model.volume.shape:
        raise MedtlError(f"{saved.mask}: the saved label has shape {mask.shape}, but the series {model.volume.shape}; it was not loaded")
    model.edit_label(mask.array, saved.labels, "label (saved)", dirty=False)


def save_call(model: ViewerModel, store: LabelStore) -> tuple[SaveCall, int]:
    """An engine call that saves a snapshot of ``model`` 's editable label (taken now, so editing may go on while it
    runs), and the edit count the snapshot holds."""
    editor = model.editor
    if editor is None:
        raise MedtlError("there is no editable label to save: accept a prediction or start a new label first")
    mask, names, edits = editor.layer.mask.copy(), dict(editor.names), editor.edits
    volume, files, description = model.volume, model.files, model.label.series_description

    def call(progress: ProgressCallback, cancel: CancelToken) -> SavedLabel:
        progress(0, 0, "saving the label")
        return store.save(mask, volume, files, names, description)

    return call, edits
