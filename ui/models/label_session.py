"""The editable label of a shown series and the :class:`LabelStore`: find a saved label, save the one edited."""

from __future__ import annotations

from collections.abc import Callable

from medtl.errors import MedtlError
from medtl.labels.store import LabelStore, SavedLabel
from medtl.progress import CancelToken, ProgressCallback
from ui.models.viewer_model import ViewerModel

SaveCall = Callable[[ProgressCallback, CancelToken], SavedLabel]


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
