"""The Qt half of the app (napari's ``_qt/``): widgets, dialogs and the workers that run engine calls off the GUI thread."""
