"""`Predictor`: a trained run applied to new images, giving a typed prediction on the input's own grid.

The image goes through the run's stored evaluation preprocessing (orientation, spacing, intensity,
channels, size), the network runs on that grid, and its outputs are resampled back onto the input
Volume through the two world affines (:mod:`medtl.inference.resample`): the mask, heatmap and
uncertainty map have exactly the input's shape, spacing, origin and direction.

- 3D models see the whole preprocessed volume (segmentation: MONAI sliding-window inference with the
  run's validation patch, else its training patch size).
- 2D models on a 3D volume see every slice along the preprocessed last axis (axial after RAS/LPS
  orientation), in batches; the volume-level steps (orientation, spacing, intensity) run once.
- Segmentation (:class:`~medtl.inference.prediction.SegmentationPrediction`): class probabilities are
  resampled (linearly) and the mask is their argmax, so mask values are the model's output channels,
  i.e. the run's label values.
- Classification (:class:`~medtl.inference.prediction.ClassificationPrediction`): per-class softmax
  probabilities; for a 2D model on several slices, per slice (``slice_probabilities``) and for the
  case as the **mean of the per-slice probabilities**. The Grad-CAM heatmap explains the case's
  predicted class on every slice, min-max scaled to [0, 1] over the whole case.
- Uncertainty (``"tta"`` or ``"mc"``, see :mod:`medtl.inference.uncertainty`): the prediction uses
  the mean of the sampled probabilities; segmentation adds a per-voxel normalised predictive entropy
  map (and its mean over the predicted foreground as the case value); classification gives the
  normalised predictive entropy of the case probabilities and their standard deviation over samples.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medtl.data.images import read_image
from medtl.data.preprocessing import Preprocessing
from medtl.dicom.volume import Volume
from medtl.errors import MedtlError
from medtl.inference.gradcam import GradCAM, normalise, target_layer
from medtl.inference.prediction import ClassificationPrediction, Prediction, SegmentationPrediction
from medtl.inference.resample import resample_to_volume
from medtl.inference.uncertainty import METHODS, dropout_modules, dropout_samples, flip_samples, normalised_entropy
from medtl.models.registry import get_architecture
from medtl.models.spec import ModelSpec, build_model
from medtl.progress import CancelToken, ProgressCallback, report
from medtl.training.device import wants_channels_last

DEFAULT_BATCH = 8
SLIDING_WINDOW_OVERLAP = 0.25


@dataclass(frozen=True)
class _NetworkInput:
    """The preprocessed image as network input items: ``batch(start, stop)`` gives ``[B, C, *spatial]``."""

    batch: Callable[[int, int], torch.Tensor]
    count: int
    affine_ras: np.ndarray  # of the output grid [i, j, k]: the volume's, or (2D) the slices stacked along k


class Predictor:
    """A trained network with its preprocessing, ready to predict on images of any supported format."""

    def __init__(
        self,
        model: nn.Module,
        spec: ModelSpec,
        preprocessing: Preprocessing,
        *,
        classes: list[str],
        labels: dict[int, str],
        device: torch.device,
        roi_size: tuple[int, ...] | None = None,
        batch_size: int = DEFAULT_BATCH,
    ) -> None:
        if spec.task != preprocessing.task or spec.spatial_dims != preprocessing.spatial_dims:
            raise MedtlError(f"model ({spec.spatial_dims}D {spec.task}) and preprocessing ({preprocessing.spatial_dims}D {preprocessing.task}) disagree")
        self.model = model.to(device).eval()
        self.channels_last = wants_channels_last(model, device)  # as training runs it: 2D networks on the CPU and CUDA are faster so
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # documented; missing from the stubs
        self.spec, self.preprocessing = spec, preprocessing
        self.classes, self.labels = classes, labels
        self.device, self.roi_size, self.batch_size = device, roi_size, batch_size

    @classmethod
    def from_run(cls, run_dir: Path | str, device: str = "auto", batch_size: int = DEFAULT_BATCH) -> Predictor:
        """The best model of a run folder with the preprocessing, classes and labels it was trained with."""
        from medtl.models.weights import RunSource
        from medtl.training.device import select_device
        from medtl.training.run_folder import RunFolder

        run_dir = Path(run_dir)
        folder = RunFolder(run_dir)
        try:
            config = folder.read_config()
        except (KeyError, TypeError) as error:
            raise MedtlError(f"{folder.config_path}: not a medtl run configuration (missing or invalid {error})") from None
        spec = dataclasses.replace(RunSource(run_dir).run_spec(), weights=None)
        preprocessing = Preprocessing.from_dict(config.preprocessing)
        # Through the run weight source, so constructor arguments read off the weights (e.g. an I3D stem) apply.
        model, report = build_model(dataclasses.replace(spec, weights=f"run:{run_dir}"))
        misfits = report.new + list(report.dropped) + list(report.adapted)
        if misfits:
            raise MedtlError(f"{folder.best_model_path}: the weights do not fit the {spec.architecture} described in config.json (e.g. {', '.join(misfits[:3])})")
        roi = None
        if spec.task == "segmentation":
            roi = config.train.val_roi_size or (preprocessing.spatial_size if spec.spatial_dims == 3 else None)
        return cls(
            model, spec, preprocessing,
            classes=_classes(config.data, spec), labels=_labels(config.data, spec),
            device=select_device(device), roi_size=tuple(roi) if roi else None, batch_size=batch_size,
        )

    # ----------------------------------------------------------------- public

    def predict(
        self,
        image: Volume | Path | str,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        uncertainty: str | None = None,
        series_uid: str | None = None,
    ) -> Prediction:
        """Predict on ``image`` (a Volume, or a path :func:`~medtl.data.images.read_image` reads; ``series_uid``
        chooses the series of a DICOM folder that holds several)."""
        self.check_uncertainty(uncertainty)
        path = None if isinstance(image, Volume) else Path(image)
        volume = image if isinstance(image, Volume) else read_image(path, series_uid)  # type: ignore[arg-type]
        try:
            network_input = self._network_input(volume)
        except (RuntimeError, ValueError) as error:  # MONAI wraps a transform's error in RuntimeError
            while error.__cause__ is not None:
                error = error.__cause__  # type: ignore[assignment]
            raise MedtlError(f"{path or 'the image'}: cannot be prepared for this {self.spec.spatial_dims}D {self.spec.architecture} ({error})") from None
        if self.spec.task == "segmentation":
            return self._segment(volume, path, network_input, uncertainty, progress, cancel)
        return self._classify(volume, path, network_input, uncertainty, progress, cancel)

    def check_uncertainty(self, method: str | None) -> None:
        """MedtlError unless ``method`` (None, ``"tta"`` or ``"mc"``) is valid for this model."""
        if method is not None and method not in METHODS:
            raise MedtlError(f"uncertainty must be one of {', '.join(METHODS)}, not {method!r}")
        if method == "tta" and not (self.preprocessing.augmentation and self.preprocessing.augmentation.flips):
            raise MedtlError("this model was trained without flips (orientation-sensitive), so flipped test-time augmentation would mislead it; use MC dropout (mc)")
        if method == "mc":
            dropout_modules(self.model, self.spec.architecture)

    def example_input(self) -> torch.Tensor:
        """A random network input of the training size, ``[1, C, *spatial_size]`` on the model's device."""
        generator = torch.Generator().manual_seed(0)
        return torch.rand(1, self.spec.in_channels, *self.preprocessing.spatial_size, generator=generator).to(self.device)

    # ------------------------------------------------------------ preprocessing

    def _network_input(self, volume: Volume) -> _NetworkInput:
        """Volume-level preprocessing once; for a 2D model, each slice's own steps on demand."""
        from monai.transforms import Compose

        from medtl.data.transforms import AxialSliced, LoadVolumed, take_slice

        steps = [step for step in self.preprocessing.eval_transforms().transforms if not isinstance(step, LoadVolumed)]
        cut = next((i for i, step in enumerate(steps) if isinstance(step, AxialSliced)), len(steps))
        image = Compose(steps[:cut])({"image": volume.to_metatensor()})["image"]
        if cut == len(steps):
            return _NetworkInput(lambda start, stop: image[None].as_subclass(torch.Tensor), 1, image.affine.numpy())
        per_slice = Compose(steps[cut + 1 :])

        def batch(start: int, stop: int) -> torch.Tensor:
            return torch.stack([per_slice({"image": take_slice(image, z)})["image"].as_subclass(torch.Tensor) for z in range(start, stop)])

        first = per_slice({"image": take_slice(image, 0)})["image"]
        return _NetworkInput(batch, int(image.shape[-1]), first.affine.numpy())  # slice steps keep the k column

    def _batches(self, network_input: _NetworkInput, message: str, progress: ProgressCallback | None, cancel: CancelToken | None) -> Iterator[torch.Tensor]:
        for start in range(0, network_input.count, self.batch_size):
            if cancel is not None:
                cancel.raise_if_cancelled()
            stop = min(network_input.count, start + self.batch_size)
            images = network_input.batch(start, stop).to(self.device)
            yield images.contiguous(memory_format=torch.channels_last) if self.channels_last and images.ndim == 4 else images
            report(progress, stop, network_input.count, message)

    @staticmethod
    def _as_grid(items: torch.Tensor, network_input: _NetworkInput) -> np.ndarray:
        """Per-item outputs ``[N, C, *spatial]`` as one ``[C, i, j, k]`` array on the output grid."""
        if items.ndim == 4:  # 2D items: slices stacked along k
            return items.permute(1, 2, 3, 0).numpy()
        return items[0].numpy()

    # ---------------------------------------------------------------- network

    def _infer(self, images: torch.Tensor) -> torch.Tensor:
        if self.roi_size is None:
            return self.model(images)
        from monai.inferers import sliding_window_inference

        return sliding_window_inference(images, self.roi_size, self.batch_size, self.model, overlap=SLIDING_WINDOW_OVERLAP, mode="gaussian")

    def _samples(self, images: torch.Tensor, uncertainty: str | None) -> torch.Tensor:
        """Softmax outputs ``[S, B, C, ...]``: one without uncertainty, else the sampler's."""

        def forward(x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self._infer(x).float(), dim=1)

        with torch.inference_mode():
            if uncertainty is None:
                return forward(images)[None].cpu()
            if uncertainty == "tta":
                return flip_samples(forward, images, spatial_output=self.spec.task == "segmentation").cpu()
            return dropout_samples(self.model, forward, images).cpu()

    # ------------------------------------------------------------------ tasks

    def _segment(
        self, volume: Volume, path: Path | None, network_input: _NetworkInput, uncertainty: str | None, progress: ProgressCallback | None, cancel: CancelToken | None
    ) -> SegmentationPrediction:
        means, entropies = [], []
        for images in self._batches(network_input, "segmenting", progress, cancel):
            mean = self._samples(images, uncertainty).mean(dim=0)
            means.append(mean)
            if uncertainty is not None:
                entropies.append(normalised_entropy(mean, dim=1)[:, None])
        probabilities = self._as_grid(torch.cat(means), network_input)
        dtype = np.uint8 if probabilities.shape[0] <= 256 else np.uint16
        mask = resample_to_volume(probabilities, network_input.affine_ras, volume, reduce=lambda slab: slab.argmax(axis=0).astype(dtype))
        voxel_mm3 = float(np.prod(volume.spacing))
        counts = np.bincount(mask.ravel(), minlength=max(self.labels, default=0) + 1)
        volumes_mm3 = {name: float(counts[value]) * voxel_mm3 for value, name in self.labels.items() if value != 0}
        uncertainty_map, case_uncertainty = None, None
        if entropies:
            entropy = resample_to_volume(self._as_grid(torch.cat(entropies), network_input), network_input.affine_ras, volume)[0]
            uncertainty_map = _on_grid(np.clip(entropy, 0.0, 1.0).astype(np.float32), volume)
            foreground = mask > 0
            case_uncertainty = float(entropy[foreground].mean()) if foreground.any() else None
        return SegmentationPrediction(volume, path, dict(self.labels), _on_grid(mask, volume), volumes_mm3, case_uncertainty, uncertainty_map)

    def _classify(
        self, volume: Volume, path: Path | None, network_input: _NetworkInput, uncertainty: str | None, progress: ProgressCallback | None, cancel: CancelToken | None
    ) -> ClassificationPrediction:
        samples = torch.cat([self._samples(images, uncertainty) for images in self._batches(network_input, "classifying", progress, cancel)], dim=1)
        per_item = samples.mean(dim=0)  # [N, C]
        probabilities = per_item.mean(dim=0)
        case_uncertainty, probability_std = None, None
        if uncertainty is not None:
            case_uncertainty = float(normalised_entropy(probabilities[None], dim=1)[0])
            probability_std = samples.mean(dim=1).std(dim=0).numpy()
        return ClassificationPrediction(
            volume, path, tuple(self.classes), probabilities.numpy(),
            heatmap=self._heatmap(volume, network_input, int(probabilities.argmax()), progress, cancel),
            slice_probabilities=per_item.numpy() if self.spec.spatial_dims == 2 else None,
            uncertainty=case_uncertainty, probability_std=probability_std,
        )

    def _heatmap(self, volume: Volume, network_input: _NetworkInput, class_index: int, progress: ProgressCallback | None, cancel: CancelToken | None) -> Volume:
        cam = GradCAM(self.model, target_layer(self.model, get_architecture(self.spec.architecture)))
        maps = [cam(images, torch.full((images.shape[0],), class_index, dtype=torch.long)).detach().cpu() for images in self._batches(network_input, "explaining", progress, cancel)]
        grid = self._as_grid(normalise(torch.cat(maps))[:, None], network_input)
        heatmap = resample_to_volume(grid, network_input.affine_ras, volume)[0]
        return _on_grid(np.clip(heatmap, 0.0, 1.0).astype(np.float32), volume)


def _on_grid(array: np.ndarray, volume: Volume) -> Volume:
    """``array`` ``[z, y, x]`` as a Volume on ``volume``'s grid, with its identifying metadata."""
    return Volume(array, tuple(volume.spacing), tuple(volume.origin), volume.direction.copy(), metadata=dict(volume.metadata))  # type: ignore[arg-type]


def _classes(data: dict[str, Any], spec: ModelSpec) -> list[str]:
    if spec.task != "classification":
        return []
    classes = [str(name) for name in data.get("classes") or []] or [f"class{i}" for i in range(spec.num_outputs)]
    if len(classes) != spec.num_outputs:
        raise MedtlError(f"the run names {len(classes)} classes but its model has {spec.num_outputs} outputs")
    return classes


def _labels(data: dict[str, Any], spec: ModelSpec) -> dict[int, str]:
    if spec.task != "segmentation":
        return {}
    try:
        labels = {int(value): str(name) for value, name in (data.get("labels") or {}).items()}
    except (AttributeError, TypeError, ValueError):
        raise MedtlError(f"the run's labels must map mask values to names, e.g. {{\"0\": \"background\", \"1\": \"bone\"}}; got {data.get('labels')!r}") from None
    labels = labels or {0: "background", **{value: f"label{value}" for value in range(1, spec.num_outputs)}}
    if max(labels) >= spec.num_outputs:
        raise MedtlError(f"the run's label value {max(labels)} has no output channel (the model has {spec.num_outputs})")
    return labels
