"""Self-supervised pretraining of a backbone on the user's own unlabelled images (``medtl pretrain``).

- :mod:`~medtl.pretrain.unlabelled`: 2D slices from DICOM folders, NIfTI and pictures, per-volume
  normalised like fine-tuning will normalise them; broken inputs are skipped and listed;
- :mod:`~medtl.pretrain.views`: two augmented views of each slice (random crop, rotation, intensity
  jitter, noise; cut-out masking of the first);
- :mod:`~medtl.pretrain.objective`: NT-Xent contrastive loss on pooled backbone features plus masked
  reconstruction through a light decoder;
- :mod:`~medtl.pretrain.pretrainer`: the objective the Trainer runs, writing a run folder that ``--weights run:RUN`` accepts.
"""
