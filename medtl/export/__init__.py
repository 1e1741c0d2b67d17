"""Writing predictions, labels and models for other tools.

- :mod:`medtl.export.prediction_outputs`: all of a prediction's files (what ``medtl predict`` writes).
- :mod:`medtl.export.nifti`: a mask, heatmap or uncertainty map as NIfTI (atomic).
- :mod:`medtl.export.dicom_seg`: a mask as DICOM Segmentation (highdicom) referencing its source series.
- :mod:`medtl.export.label_export`: drawn labels as DICOM SEG, NIfTI with a label sidecar, or an MSD dataset.
- :mod:`medtl.export.deidentify`: the PS3.15 basic confidentiality profile for every DICOM header an export writes.
- :mod:`medtl.export.overlay`: a PNG of the middle slice with a heatmap blended over it.
- :mod:`medtl.export.bundle`: a run's model as a MONAI bundle folder.
- :mod:`medtl.export.torchscript`: a run's model as TorchScript, checked against the eager model.
"""
