"""What to label next: unlabelled images ranked by how much labelling them would help a trained run.

:func:`rank` scores each input of a :class:`RankRequest` and orders them, most useful first:

- ``"tta"`` (test-time flips) or ``"mc"`` (MC dropout): the model's uncertainty as
  :class:`~medtl.inference.predictor.Predictor` computes it for ``medtl predict --uncertainty`` (see
  :mod:`medtl.inference.uncertainty`), the normalised predictive entropy of the mean of the sampled
  probabilities (0: certain, 1: uniform). Segmentation scores an image by the mean over **the whole
  image** (a model that finds nothing in an image can still be unsure about it, and a mean over the
  predicted foreground alone is undefined there); each row also gives the mean over the predicted
  foreground and the mean of every slice along the image's first axis (z), so the most uncertain slice
  can be labelled first. Classification scores the case's probabilities (for a 2D model on a volume,
  the mean of its slices' probabilities). These are MONAI Label's ``tta`` and ``epistemic`` strategies.
- ``"random"``: a seeded shuffle, the baseline that uncertainty has to beat. An input's place depends
  only on the seed and its path, not on the other inputs or their order.

``method=None`` picks ``tta`` when the model was trained with flips, else ``mc`` when it has dropout.
An input that cannot be read or predicted on is reported with its reason (:class:`RankFailure`), and
the others are ranked. Importing this module imports neither torch nor MONAI.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medtl.errors import InvalidRequest, MedtlError
from medtl.inference.prediction import UNCERTAINTY_METHODS
from medtl.progress import Cancelled, CancelToken, ProgressCallback, report
from medtl.training.config import DEVICES
from medtl.training.run_folder import RunFolder

if TYPE_CHECKING:
    from medtl.inference.predictor import Predictor

RANDOM = "random"
METHODS = (*UNCERTAINTY_METHODS, RANDOM)
SCORES = {
    "segmentation": "mean normalised predictive entropy over the whole image",
    "classification": "normalised predictive entropy of the case's class probabilities",
    RANDOM: "a seeded random number (the random baseline)",
}
"""What a ranking's score is, in words, by task (uncertainty methods) or for the random baseline."""


@dataclass(frozen=True)
class RankRequest:
    """Images to rank for labelling with a trained run, validated on creation (:class:`~medtl.errors.InvalidRequest` names the field).

    ``run_dir`` is a finished training run; ``inputs`` are DICOM series folders or files, NIfTI or
    PNG/JPEG/TIFF images; ``method`` is ``"tta"``, ``"mc"``, ``"random"`` or ``None`` (the model's
    uncertainty: ``tta`` when it allows flips, else ``mc``); ``seed`` seeds the random baseline.
    """

    run_dir: Path
    inputs: tuple[Path, ...]
    method: str | None = None
    seed: int = 0
    device: str = "auto"
    batch_size: int = 8

    def __post_init__(self) -> None:
        object.__setattr__(self, "run_dir", Path(self.run_dir))
        object.__setattr__(self, "inputs", tuple(Path(path) for path in self.inputs))
        problem = RunFolder(self.run_dir).model_problem()
        if problem is not None:
            raise InvalidRequest("run_dir", problem)
        if not self.inputs:
            raise InvalidRequest("inputs", "give at least one image to rank")
        missing = [path for path in self.inputs if not path.exists()]
        if missing:
            raise InvalidRequest("inputs", f"{missing[0]}: no such file or folder")
        if self.method is not None and self.method not in METHODS:
            raise InvalidRequest("method", f"the ranking method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if self.device not in DEVICES:
            raise InvalidRequest("device", f"the device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        if self.batch_size < 1:
            raise InvalidRequest("batch_size", f"the batch size must be at least 1, not {self.batch_size}")


@dataclass(frozen=True)
class RankedInput:
    """An input's place (1: label it first; 0 until ranked) and score; for segmentation by uncertainty, also the mean uncertainty over the
    predicted foreground (``None`` when nothing was found) and per slice along the image's first axis (z)."""

    rank: int
    input: Path
    score: float
    foreground_score: float | None = None
    slice_scores: tuple[float, ...] = ()

    @property
    def most_uncertain_slice(self) -> int | None:
        """The index (along z) of the slice with the highest mean uncertainty, if slices were scored."""
        return max(range(len(self.slice_scores)), key=self.slice_scores.__getitem__) if self.slice_scores else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank, "input": str(self.input), "score": self.score, "foreground_score": self.foreground_score,
            "most_uncertain_slice": self.most_uncertain_slice, "slice_scores": list(self.slice_scores),
        }  # fmt: skip


@dataclass(frozen=True)
class RankFailure:
    """An input that could not be ranked, and why (a message naming the file)."""

    input: Path
    reason: str


@dataclass(frozen=True)
class Ranking:
    """The inputs ordered most useful to label first, what the score means, and the inputs that failed."""

    method: str
    score: str
    ranked: tuple[RankedInput, ...]
    failed: tuple[RankFailure, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method, "score": self.score, "ranked": [row.to_dict() for row in self.ranked],
            "failed": [{"input": str(failure.input), "reason": failure.reason} for failure in self.failed],
        }  # fmt: skip


def rank(request: RankRequest, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Ranking:
    """Score every input of ``request`` and order them by score, highest first (ties by path).

    A run or a method that cannot work for this model raises MedtlError before any input is read;
    cancelling raises :class:`~medtl.progress.Cancelled`.
    """
    predictor = None
    method = request.method
    if method != RANDOM:
        from medtl.inference.predictor import Predictor

        predictor = Predictor.from_run(request.run_dir, device=request.device, batch_size=request.batch_size)
        method = method or _default_method(predictor)
        predictor.check_uncertainty(method)
    scored: list[RankedInput] = []
    failed: list[RankFailure] = []
    total = len(request.inputs)
    for done, path in enumerate(request.inputs):
        report(progress, done, total, f"ranking {path.name}")
        if cancel is not None:
            cancel.raise_if_cancelled()
        try:
            scored.append(_random_score(path, request.seed) if predictor is None else _uncertainty_score(predictor, path, method, cancel))
        except Cancelled:
            raise
        except MedtlError as error:
            failed.append(RankFailure(path, str(error)))
    report(progress, total, total, "ranked")
    order = sorted(scored, key=lambda row: (-row.score, str(row.input)))
    ranked = tuple(dataclasses.replace(row, rank=place) for place, row in enumerate(order, start=1))
    meaning = SCORES[RANDOM] if predictor is None else SCORES[predictor.spec.task]
    return Ranking(method, meaning, ranked, tuple(failed))


def _default_method(predictor: Predictor) -> str:
    """``tta`` when the model may see flipped images, else ``mc`` (MedtlError when it has no dropout either)."""
    try:
        predictor.check_uncertainty("tta")
        return "tta"
    except MedtlError:
        pass
    try:
        predictor.check_uncertainty("mc")
    except MedtlError:
        raise MedtlError(
            f"this {predictor.spec.architecture} was trained without flips and has no dropout, so its uncertainty cannot be estimated; rank at random"
        ) from None
    return "mc"


def _random_score(path: Path, seed: int) -> RankedInput:
    """A number in [0, 1) drawn from the seed and the input's path alone; the input must be readable."""
    from medtl.data.images import read_image

    read_image(path)
    digest = hashlib.sha256(f"{seed}\0{path.resolve()}".encode()).digest()
    return RankedInput(0, path, int.from_bytes(digest[:8], "big") / 2**64)


def _uncertainty_score(predictor: Predictor, path: Path, method: str, cancel: CancelToken | None) -> RankedInput:
    """The model's uncertainty about ``path``: the whole image's mean entropy (segmentation) or the case's."""
    from medtl.inference.prediction import SegmentationPrediction

    prediction = predictor.predict(path, cancel=cancel, uncertainty=method)
    if isinstance(prediction, SegmentationPrediction):
        assert prediction.uncertainty_map is not None  # predicted with uncertainty
        entropy = prediction.uncertainty_map.array
        slices = tuple(float(value) for value in entropy.reshape(entropy.shape[0], -1).mean(axis=1))
        return RankedInput(0, path, float(entropy.mean()), prediction.uncertainty, slices)
    assert prediction.uncertainty is not None
    return RankedInput(0, path, prediction.uncertainty)
