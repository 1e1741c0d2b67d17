"""medtl: transfer learning on medical images.

The engine (this package) never imports Qt; heavy libraries (torch, MONAI) are imported lazily
by the modules that need them so that `medtl scan` and `medtl convert` start fast.
"""

__version__ = "0.1.0"
