"""What the frozen build has of ``scipy.special``: the two functions ``scipy.ndimage`` calls (``cosdg``, ``sindg``).

``scipy.ndimage`` imports ``scipy.special`` at import time, only for the rotation matrix of ``ndimage.rotate``. The
real module links SciPy's own OpenBLAS and gfortran (with ``scipy.linalg``, ``scipy.sparse`` and ``scipy.spatial``,
which nothing else in medtl needs: 55 MB of the bundle). ``packaging/rthook_substitutes.py`` registers this module as
``scipy.special`` in the frozen build, and ``tests/bundle_simulation.py`` does the same in the tests that run as the
bundle would. Any other name raises ``AttributeError`` saying the build leaves it out.
"""

from __future__ import annotations

from typing import Any


def _in_degrees(function: Any, degrees: Any) -> Any:
    """``function`` (``numpy.cos`` or ``numpy.sin``) of ``degrees``, reduced modulo 360 first and exact at multiples of 90."""
    import numpy as np

    reduced = np.mod(np.asarray(degrees, dtype=np.float64), 360.0)
    values = function(np.deg2rad(reduced))
    # a NumPy scalar for a scalar angle, as SciPy returns; + 0.0 turns -0.0 into 0.0
    return np.where(np.mod(reduced, 90.0) == 0, np.round(values), values)[()] + 0.0


def cosdg(degrees: Any) -> Any:
    """The cosine of an angle in degrees, exact (0, 1 or -1) at multiples of 90 degrees, as ``scipy.special.cosdg``."""
    import numpy as np

    return _in_degrees(np.cos, degrees)


def sindg(degrees: Any) -> Any:
    """The sine of an angle in degrees, exact (0, 1 or -1) at multiples of 90 degrees, as ``scipy.special.sindg``."""
    import numpy as np

    return _in_degrees(np.sin, degrees)


def __getattr__(name: str) -> Any:
    raise AttributeError(f"scipy.special.{name} is not in medtl's frozen build (only cosdg and sindg, which scipy.ndimage uses)")
