"""Training: the Trainer, its events, metrics, devices, the run folder, DDP and the scratch comparison.

Import the submodules directly (``from medtl.training.trainer import Trainer``); this package
imports nothing heavy, so that the CLI and the app can name its types before torch is loaded.
"""
