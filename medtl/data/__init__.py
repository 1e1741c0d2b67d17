"""The training data pipeline: datalists, image reading, patient-level splits, MONAI preprocessing and loaders.

Importing these modules is light: torch and MONAI are imported by :mod:`medtl.data.transforms`
and inside the functions of :mod:`medtl.data.preprocessing` and :mod:`medtl.data.dataset` that
build transforms and loaders.
"""
