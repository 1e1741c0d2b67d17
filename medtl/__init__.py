"""medtl: transfer learning on medical images.

The engine (this package) never imports Qt; heavy libraries (torch, MONAI) are imported lazily
by the modules that need them so that `medtl scan` and `medtl convert` start fast.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("medtl")  # pyproject.toml's version, the one place it is written
except PackageNotFoundError:  # a source tree that was never pip-installed
    __version__ = "0+unknown"
