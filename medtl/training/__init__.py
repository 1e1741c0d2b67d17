"""Training: the one loop (the Trainer) and the objectives it runs, its events, metrics, devices, the run folder, DDP
and the scratch comparison.

Import the submodules directly (``from medtl.training.trainer import Trainer``); this package
imports nothing heavy, so that the CLI and the app can name its types before torch is loaded.
"""
