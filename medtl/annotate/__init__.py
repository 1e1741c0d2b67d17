"""Annotation tools on a label volume ``[z, y, x]`` (uint8, 0 = background), headless (numpy, scipy, scikit-image).

Every tool writes through :func:`~medtl.annotate.change.write` and returns the :class:`Change` it made (its bounding
box and the values before and after), so an undo history (:class:`History`) keeps only the diff. Locked labels
are never overwritten; hidden labels only when a tool asks (:class:`Protection`).

- :mod:`~medtl.annotate.footprints`: the pixels or voxels a tool covers (disc, ball, polygon, band, grown region);
- :mod:`~medtl.annotate.tools`: brush and eraser (2D disc on a slice, 3D ball), polygon fill, threshold, region
  growing, on a :class:`SlicePlane` (a slice along one array axis);
- :mod:`~medtl.annotate.interpolate`: shapes between annotated slices by signed-distance interpolation.
"""

from medtl.annotate.change import Change, Protection, Region, write
from medtl.annotate.history import History
from medtl.annotate.interpolate import interpolate
from medtl.annotate.tools import SlicePlane, brush, brush_ball, fill_polygon, region_grow, region_grow_3d, threshold_box, threshold_brush

__all__ = [
    "Change", "History", "Protection", "Region", "SlicePlane", "brush", "brush_ball", "fill_polygon", "interpolate",
    "region_grow", "region_grow_3d", "threshold_box", "threshold_brush", "write",
]  # fmt: skip
