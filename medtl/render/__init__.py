"""One renderer for greyscale images with window/level and coloured overlays, pure numpy.

Used by the viewer (display pixels), exported PNGs (:mod:`medtl.export.overlay`) and the demo's
overlay pictures (:mod:`medtl.demo.overlays`).
"""
