"""The editable label of a shown series and the :class:`LabelStore`: find a saved label, save the one edited."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from medtl.data.images import read_image
from medtl.errors import MedtlError
from medtl.labels.store import LabelStore, SavedLabel
from medtl.progress import CancelToken, ProgressCallback
from ui.models.viewer_model import ViewerModel

SaveCall = Callable[[ProgressCallback, CancelToken], SavedLabel]

_SAVING = threading.Lock()
"""One label save at a time (a background save and the save on closing may overlap)."""
_NEWEST_WRITTEN: dict[int, tuple[int, SavedLabel]] = {}
"""Per editor (``id``): the edit count of the newest snapshot on disk, and where it went."""


def attach_saved_label(model: ViewerModel, store: LabelStore) -> None:
    """Make the label saved for ``model`` 's series (if any) its editable label. Runs in the loading worker."""
    metadata = model.volume.metadata
    saved = store.find(str(metadata.get("study_uid", "")), str(metadata.get("series_uid", "")))
    if saved is None or not saved.mask.is_file():
        return
    try:
        mask = read_image(saved.mask)
    except MedtlError as error:
        model.volume.warnings.append(f"the saved label was not loaded: {error}")
        return
    volume = model.volume
    same_grid = mask.shape == volume.shape and all(
        np.allclose(a, b, atol=1e-3) for a, b in ((mask.spacing, volume.spacing), (mask.origin, volume.origin), (mask.direction, volume.direction))
    )
    if not same_grid:
        model.volume.warnings.append(f"{saved.mask}: the saved label is not on this series' grid (the series changed since?); it was not loaded")
        return
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
        with _SAVING:  # an older snapshot that waited here never overwrites a newer one
            newest = _NEWEST_WRITTEN.get(id(editor))
            if newest is not None and newest[0] > edits:
                return newest[1]
            saved = store.save(mask, volume, files, names, description)
            _NEWEST_WRITTEN[id(editor)] = (edits, saved)
            return saved

    return call, edits
