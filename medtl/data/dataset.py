"""Training and validation loaders from a datalist: split, label indices, caching within a RAM budget.

Caching stores what the deterministic part of the pipeline produces (everything before the first
random transform). ``cache="auto"`` measures that output on a few cases, extrapolates, and keeps
it in RAM (MONAI ``CacheDataset``) when it fits the budget, else on disk (``PersistentDataset``
under ``cache_dir``, one folder per preprocessing and pipeline, items keyed by path, size and
modification time so an edited file is re-read). Under the ``spawn`` start method every worker
gets its own copy of an in-RAM cache, so the estimate is multiplied by ``1 + num_workers``.

Everything handed to a worker (datasets, transforms, hash function) is a module-level class or
function, so loaders work with ``multiprocessing_context="spawn"`` (Windows, macOS).

Sparse masks: the pipelines, the loss and the metrics leave out the voxels holding
:func:`training_ignore_label` (the datalist's ``ignore`` label, see :mod:`medtl.data.sparse`). A
segmentation datalist of one patient without a validation list is split into slabs of its volumes'
annotated slices (:mod:`medtl.data.slabs`); the masks of both sides are written into a folder the caller
names (a run's ``split/``).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medtl.data.datalist import Case, Datalist, DatalistError
from medtl.data.preprocessing import Preprocessing
from medtl.data.slabs import SLAB_SPLIT, SLAB_WARNING, SLICE_ORIENTATION, annotated_slices, slice_axis, split_into_slabs, write_split_masks
from medtl.data.sparse import with_ignore
from medtl.data.split import split_cases

if TYPE_CHECKING:  # pragma: no cover
    from monai.data import DataLoader, Dataset
    from monai.transforms import Compose

CACHE_MODES = ("auto", "memory", "disk", "none")
DEFAULT_RAM_FRACTION = 0.25
FALLBACK_AVAILABLE_BYTES = 4 * 1024**3  # assumed free RAM when it cannot be measured
_SAMPLES_FOR_ESTIMATE = 3
DEFAULT_SEED = 0
DEFAULT_VAL_FRACTION = 0.2
"""Without a validation list, this fraction of the patients (one patient: of its annotated slices) is held out, shuffled with this seed."""
_PIPELINE_VERSION = 2
"""Part of the disk cache's key: raised when the pipelines' output changes (2: validation of a 2D network on a
volume takes every annotated slice, not the central one)."""


@dataclass
class DataSummary:
    """What the loaders hold, for the UI, the run folder and the loss (``class_weights``)."""

    task: str
    split: str  # "datalist" (given validation list) or "patients, seed N, fraction F"
    train_cases: int
    val_cases: int
    train_patients: int
    val_patients: int
    classes: list[str] = field(default_factory=list)
    labels: dict[int, str] = field(default_factory=dict)  # segmentation: the network's outputs (no "ignore")
    train_class_counts: dict[str, int] = field(default_factory=dict)  # cases per class; segmentation: masks holding each label
    val_class_counts: dict[str, int] = field(default_factory=dict)
    ignore_label: int | None = None  # segmentation: the mask value of voxels nobody annotated, which count nowhere
    train_annotated_slices: int = 0  # segmentation: slices holding annotated voxels, along the axis 2D networks slice
    val_annotated_slices: int = 0
    slabs: list[dict[str, Any]] = field(default_factory=list)  # a split within one patient: its slices per volume
    class_weights: list[float] | None = None  # inverse frequency on training, mean 1; for the loss
    weighted_sampler: bool = False
    cache: str = "none"  # "memory", "disk" or "none"
    cache_bytes_estimate: int = 0
    ram_budget_bytes: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = {str(k): v for k, v in self.labels.items()}
        return data


def build_loaders(
    datalist: Datalist,
    task: str,
    preprocessing: Preprocessing,
    batch_size: int,
    *,
    num_workers: int = 0,
    cache: str = "auto",
    ram_budget_bytes: int | None = None,
    cache_dir: Path | str | None = None,
    seed: int = DEFAULT_SEED,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    weighted_sampler: bool = False,
    multiprocessing_context: str | None = None,
    split_dir: Path | str | None = None,
) -> tuple[DataLoader, DataLoader, DataSummary]:
    """``(train_loader, val_loader, summary)`` for ``datalist``.

    Without a validation list the cases are split by patient (seeded, stratified for
    classification); one patient's volumes are split into slabs, whose masks are written into
    ``split_dir`` (required then). Classification labels become indices into ``datalist.classes``;
    ``weighted_sampler`` draws training items with inverse class frequency (else the summary's
    ``class_weights`` are there for the loss). Segmentation validation batches hold one case: one
    image, or the annotated slices of one volume for a 2D network (whole images differ in size).
    """
    import torch
    from monai.data import DataLoader

    if task != datalist.task:
        raise DatalistError(f"{datalist.path}: is a {datalist.task} datalist; it cannot train a {task} model")
    if preprocessing.task != task:
        raise ValueError(f"the preprocessing is for {preprocessing.task}, not {task}")
    if cache not in CACHE_MODES:
        raise ValueError(f"cache must be one of {CACHE_MODES}, got {cache!r}")
    train_cases, val_cases, split, slabs = _split(datalist, task, seed, val_fraction, preprocessing.orientation)
    if not val_cases:
        raise DatalistError(
            f"{datalist.path}: no patient can be held out for validation (only one patient, or each holds a class no other patient has); add a \"validation\" list or more patients"
        )
    ignore = training_ignore_label(datalist)
    if slabs and ignore is not None:  # a split within one patient: both sides' masks become files
        if split_dir is None:
            raise ValueError("a split within one patient writes its masks into split_dir; give one")
        train_cases, val_cases = (write_split_masks(cases, ignore, Path(split_dir)) for cases in (train_cases, val_cases))
    summary = _summary(datalist, task, split, train_cases, val_cases, preprocessing.orientation)
    summary.slabs = slabs
    train_items, val_items = _items(train_cases, datalist), _items(val_cases, datalist)
    train_transform, eval_transform = preprocessing.train_transforms(ignore), preprocessing.eval_transforms(ignore)
    context = multiprocessing_context or multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_all_start_methods()[0]
    copies = 1 + num_workers if (num_workers and context != "fork") else 1  # spawned workers each unpickle the cache
    summary.cache_bytes_estimate = copies * (_estimate_bytes(train_items, train_transform) + _estimate_bytes(val_items, eval_transform))
    summary.ram_budget_bytes = ram_budget_bytes if ram_budget_bytes is not None else int(DEFAULT_RAM_FRACTION * available_memory_bytes())
    mode = cache if cache != "auto" else ("memory" if summary.cache_bytes_estimate <= summary.ram_budget_bytes else "disk")
    summary.cache = mode
    root = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    key = _preprocessing_key(preprocessing, ignore)
    train_ds = _dataset(train_items, train_transform, mode, root / f"{key}-train")
    val_ds = _dataset(val_items, eval_transform, mode, root / f"{key}-eval")
    train_transform.set_random_state(seed=seed)

    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if weighted_sampler and summary.class_weights is not None:
        weights = [summary.class_weights[item["label"]] for item in train_items]
        sampler = torch.utils.data.WeightedRandomSampler(weights, num_samples=len(weights), replacement=True, generator=generator)
    summary.weighted_sampler = sampler is not None
    worker_options: dict[str, Any] = {"num_workers": num_workers}
    if num_workers:  # persistent: spawning workers (and unpickling the cache) once, not every epoch
        worker_options.update(multiprocessing_context=context, persistent_workers=True)
    train_loader = DataLoader(train_ds, batch_size=batch_size, shuffle=sampler is None, sampler=sampler, generator=generator, **worker_options)
    val_batch = batch_size if task == "classification" else 1
    val_loader = DataLoader(val_ds, batch_size=val_batch, shuffle=False, **worker_options)
    return train_loader, val_loader, summary


def split_datalist(
    datalist: Datalist,
    task: str | None = None,
    seed: int = DEFAULT_SEED,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    orientation: str | None = SLICE_ORIENTATION,
) -> tuple[list[Case], list[Case], str]:
    """``(training, validation, split)`` as training splits ``datalist``: its own ``validation`` list if it has one
    (``split`` is ``"datalist"``), else its patients, seeded (``"patients, seed N, fraction F"``); a segmentation
    datalist of one patient: slabs of its volumes' annotated slices along the axis that ``orientation`` puts last
    (:data:`~medtl.data.slabs.SLAB_SPLIT`; each side's cases carry the slices they keep, :attr:`Case.annotated`)."""
    training, validation, split, _ = _split(datalist, task or datalist.task, seed, val_fraction, orientation)
    return training, validation, split


def training_ignore_label(datalist: Datalist) -> int | None:
    """The mask value training leaves out: the datalist's ``ignore`` label; for a segmentation datalist of one patient
    without a validation list (split into slabs, whose other side becomes unannotated), one above its labels."""
    if datalist.task != "segmentation":
        return None
    if datalist.ignore_label is not None:
        return datalist.ignore_label
    if not datalist.validation and len({case.group for case in datalist.training}) == 1:
        return len(datalist.labels)
    return None


def _split(datalist: Datalist, task: str, seed: int, val_fraction: float, orientation: str | None) -> tuple[list[Case], list[Case], str, list[dict[str, Any]]]:
    """:func:`split_datalist` plus the slabs of a split within one patient (empty otherwise)."""
    if datalist.validation:
        return datalist.training, datalist.validation, "datalist", []
    training, validation = split_cases(datalist.training, task, val_fraction, seed)
    ignore = training_ignore_label(datalist)
    if not validation and task == "segmentation" and ignore is not None:
        slabs = split_into_slabs(datalist, training, ignore, orientation, val_fraction, seed)
        if slabs is not None:
            return slabs[0], slabs[1], SLAB_SPLIT, slabs[2]
    return training, validation, f"patients, seed {seed}, fraction {val_fraction}", []


def available_memory_bytes() -> int:
    """Free RAM now: psutil if installed, else /proc/meminfo (Linux), else a 4 GiB assumption."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return FALLBACK_AVAILABLE_BYTES


def _summary(datalist: Datalist, task: str, split: str, train: list[Case], val: list[Case], orientation: str | None) -> DataSummary:
    train_groups, val_groups = {c.group for c in train}, {c.group for c in val}
    labels = datalist.trained_labels if task == "segmentation" else {}
    summary = DataSummary(
        task, split, len(train), len(val), len(train_groups), len(val_groups),
        classes=list(datalist.classes), labels=labels, ignore_label=training_ignore_label(datalist),
    )  # fmt: skip
    shared = train_groups & val_groups
    if split == SLAB_SPLIT:
        summary.warnings.append(SLAB_WARNING)
    elif shared:
        summary.warnings.append(f"{len(shared)} patient(s) have cases in both training and validation; validation scores will be optimistic")
    names = datalist.classes if task == "classification" else list(labels.values())
    if task == "classification":
        train_counts, val_counts = _class_cases(train), _class_cases(val)
    else:
        (train_counts, summary.train_annotated_slices), (val_counts, summary.val_annotated_slices) = (
            _label_cases(cases, datalist, summary.ignore_label, orientation) for cases in (train, val)
        )
    summary.train_class_counts = {name: train_counts[name] for name in names}
    summary.val_class_counts = {name: val_counts[name] for name in names}
    for name in names:
        if not train_counts[name]:
            summary.warnings.append(f"{name!r} occurs in no training case; the model cannot learn it")
        elif not val_counts[name]:
            summary.warnings.append(f"{name!r} occurs in no validation case; it is not measured")
    if task == "classification":
        present = sum(1 for n in train_counts.values() if n)
        summary.class_weights = [len(train) / (present * train_counts[name]) if train_counts[name] else 0.0 for name in names]
    return summary


def _class_cases(cases: list[Case]) -> Counter[str]:
    return Counter(str(c.label) for c in cases)


def _label_cases(cases: list[Case], datalist: Datalist, ignore: int | None, orientation: str | None) -> tuple[Counter[str], int]:
    """How many masks hold each trained label (in their annotated voxels), and how many slices hold annotated voxels
    along the axis 2D networks slice; a mask value outside ``datalist.labels`` (and ``ignore``) is an error."""
    import numpy as np

    from medtl.data.images import read_image

    counts: Counter[str] = Counter()
    slices = 0
    allowed = max(len(datalist.labels), (ignore or 0) + 1)
    for case in cases:
        volume = read_image(case.label)
        values = volume.array if case.annotated is None or ignore is None else with_ignore(volume.array, case.annotated, ignore)
        if values.dtype.kind not in "iub":
            if not np.array_equal(values, np.round(values)):
                raise DatalistError(f"{datalist.path}: {case.entry} mask {case.label} holds non-integer values; a mask holds label values")
            values = values.astype(np.int64)
        if values.min() < 0 or values.max() >= allowed:
            found = sorted(set(np.unique(values).tolist()) - set(datalist.labels) - {ignore})
            raise DatalistError(f"{datalist.path}: {case.entry} mask {case.label} holds value(s) {found[:5]} not in \"labels\" {datalist.labels}; masks hold label values (0 = background), e.g. 1 not 255")
        counts.update(name for value, name in datalist.trained_labels.items() if (values == value).any())
        slices += len(annotated_slices(values, slice_axis(volume, orientation), ignore))
    return counts, slices


def _items(cases: list[Case], datalist: Datalist) -> list[dict[str, Any]]:
    if datalist.task == "classification":
        return [{"image": str(c.image), "label": datalist.classes.index(str(c.label))} for c in cases]
    return [{"image": str(c.image), "label": str(c.label)} for c in cases]


def _deterministic_prefix(transform: Compose) -> Compose:
    from monai.transforms import Compose, Randomizable

    steps = transform.transforms
    end = next((i for i, step in enumerate(steps) if isinstance(step, Randomizable)), len(steps))
    return Compose(steps[:end])


def _estimate_bytes(items: list[dict[str, Any]], transform: Compose) -> int:
    """Cached bytes for all ``items``: the deterministic output of a few, measured, extrapolated."""
    import torch

    if not items:
        return 0
    prefix = _deterministic_prefix(transform)
    step = max(1, len(items) // _SAMPLES_FOR_ESTIMATE)
    sample = items[::step][:_SAMPLES_FOR_ESTIMATE]
    sizes = []
    for item in sample:
        out = prefix(dict(item))
        outs = out if isinstance(out, list) else [out]
        sizes.append(sum(v.element_size() * v.nelement() for o in outs for v in o.values() if isinstance(v, torch.Tensor)))
    return int(sum(sizes) / len(sizes) * len(items))


def _dataset(items: list[dict[str, Any]], transform: Compose, mode: str, folder: Path) -> Dataset:
    from monai.data import CacheDataset, Dataset, PersistentDataset

    if mode == "memory":
        return CacheDataset(items, transform, num_workers=None, progress=False)
    if mode == "disk":
        folder.mkdir(parents=True, exist_ok=True)
        return PersistentDataset(items, transform, cache_dir=folder, hash_func=item_hash)
    return Dataset(items, transform)


def item_hash(item: dict[str, Any]) -> bytes:
    """Cache key of a data item: its values plus each referenced file's size and modification time."""
    parts = []
    for key in sorted(item):
        value = item[key]
        stamp = ""
        if isinstance(value, str) and os.path.exists(value):
            stat = os.stat(value)
            stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
        parts.append(f"{key}={value}|{stamp}")
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest().encode("ascii")


def _preprocessing_key(preprocessing: Preprocessing, ignore: int | None) -> str:
    text = json.dumps({**preprocessing.to_dict(), "ignore_label": ignore, "pipeline": _PIPELINE_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("medtl")) / "datasets"
