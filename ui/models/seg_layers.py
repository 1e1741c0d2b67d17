"""The DICOM SEG objects a scan found for a series, shown with it as label layers ("SEG: <description>").

Each is read onto the series' grid with :func:`medtl.labels.mask_import.read_mask` (segment N -> label
value N, named by its segment label, coloured as the SEG recommends); one that does not fit the grid
is not shown, and its one-line reason becomes a warning of the volume (listed in Problems).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medtl.dicom.segmentations import SegFile, SegSeries
from medtl.errors import MedtlError
from medtl.labels.mask_import import read_mask
from ui.models.overlays import LabelLayer
from ui.models.viewer_model import ViewerModel

SEG_OPACITY = 0.4  # under the label being edited (0.6), as a prediction is


def attach_segmentations(model: ViewerModel, segs: Sequence[SegSeries]) -> None:
    """Add a label layer for each SEG file of ``segs`` that fits ``model`` 's series; the reason of each that does not
    goes to the volume's warnings. Runs in the loading worker."""
    series_uid = str(model.volume.metadata.get("series_uid", ""))
    for seg in segs:
        for file in seg.files:
            if series_uid and file.referenced and series_uid not in file.referenced:
                continue  # another file of the SEG series, labelling another series
            name = f"SEG: {seg.name}" + (f" ({file.path.name})" if len(seg.files) > 1 else "")
            try:
                model.add_layer(seg_layer(file, name, model))
            except MedtlError as error:
                model.volume.warnings.append(str(error))


def seg_layer(file: SegFile, name: str, model: ViewerModel) -> LabelLayer:
    """The SEG ``file`` as a label layer called ``name`` on ``model`` 's grid; MedtlError (naming the file) when it does
    not fit or cannot be read."""
    mask = read_mask(file.path, model.volume)
    if mask.array.dtype != np.uint8:
        raise MedtlError(f"{file.path}: has segments numbered above 255; the viewer shows label values 1..255 only")
    colours = {segment.number: colour for segment in file.segments if (colour := segment.rgb()) is not None and segment.number in mask.names}
    return LabelLayer(name, mask.array, colors=colours, names=dict(mask.names), opacity=SEG_OPACITY)
