"""PyInstaller runtime hook: the modules the frozen build replaces by a subset (``bundle_filter.SUBSTITUTES``) are
registered under the name of the module they stand for, before anything imports it."""

import sys

import scipy_special_subset

sys.modules.setdefault("scipy.special", scipy_special_subset)
