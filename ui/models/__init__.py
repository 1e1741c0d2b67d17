"""Pure view models of the app (napari's ``layers/``): no Qt imports, tested without a QApplication.

They hold what a view shows (planes, layers, label edits, training curves) and bind engine objects;
the Qt widgets in :mod:`ui.qt` observe them.
"""
