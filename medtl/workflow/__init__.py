"""Workflows: the engine's building blocks glued into the jobs a user runs, one call each.

- :mod:`medtl.workflow.train`: :func:`~medtl.workflow.train.train`, from a datalist to a finished run
  folder (``medtl train`` and the app's training worker both call it).
- :mod:`medtl.workflow.predict`: :func:`~medtl.workflow.predict.predict`, a
  :class:`~medtl.workflow.predict.PredictRequest` in, one typed outcome per input out (``medtl predict``).
- :mod:`medtl.workflow.defaults`: what medtl chooses when the user does not (network, preprocessing,
  training settings), given the data and the device.

Importing this package imports nothing heavy.
"""
