"""``medtl --self-test``: proves that an installation (the frozen build above all) can do its work.

One step after the other, each printed as one line with its time (``ok``/``FAIL``, seconds, what it
checked); the exit status is 1 and the last line names the failed steps when any fails:

- ``plugins``: torch, MONAI, safetensors, nibabel and highdicom import, and pydicom has a decoder
  available for every compressed transfer syntax medtl reads (:data:`medtl.dicom.pixels.DECODER_PACKAGES`,
  found through the pylibjpeg plugins' entry points, which a frozen build must carry);
- ``dicom``: one DICOM file per such syntax is written and decoded through medtl's own pixel path
  (:func:`medtl.dicom.pixels.decode_frame`). Files are compressed here with pydicom's encoders where one
  exists (RLE, JPEG-LS, JPEG 2000), lossless ones decoded back exactly; the JPEG ones come from pydicom's
  bundled test files; HTJ2K from the codestream in ``resources/selftest/`` (see its README);
- ``weights``: every bundled pretrained weight file is read (``weights_only``/safetensors) and
  LiteMedSAM is built and loaded from its verified weights;
- ``training``: a few steps of a U-Net on a tiny synthetic segmentation task through
  :func:`medtl.workflow.train.train`, into a run folder;
- ``prediction``: that run predicts on one image through :func:`medtl.workflow.predict.predict`;
- ``app``: ``medtl app --screenshot`` renders the bundled sample offscreen in a child process (the
  engine never imports Qt): Qt, its platform and image plugins and the app's resources load.

Everything is written into a temporary folder that is removed afterwards, except what first use writes
anyway into the user's own folders (the joined Astra weights in the weights cache).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

if TYPE_CHECKING:
    from pydicom.dataset import Dataset
    from pydicom.uid import UID

ROWS, COLUMNS, BITS = 48, 64, 12
"""The grey test frame every generated file holds (non-square, so a transposed decode is caught)."""
SELFTEST_RESOURCES = Path(__file__).resolve().parents[1] / "resources" / "selftest"
PYDICOM_FILES = {
    "1.2.840.10008.1.2.4.50": "SC_rgb_small_odd_jpeg.dcm",  # JPEG Baseline, RGB
    "1.2.840.10008.1.2.4.51": "JPGExtended.dcm",  # JPEG Extended, 12-bit grey
    "1.2.840.10008.1.2.4.57": "SC_rgb_jpeg_gdcm.dcm",  # JPEG Lossless (process 14): a selection-value-1 stream, which process 14 includes
    "1.2.840.10008.1.2.4.70": "SC_rgb_jpeg_gdcm.dcm",  # JPEG Lossless SV1
}
"""pydicom's bundled test files (MIT) for the syntaxes no installed encoder writes, relabelled where noted."""
HTJ2K_CODESTREAM = "htj2k_lossless_rpcl.j2c"
ENCODER_OPTIONS: dict[str, dict[str, object]] = {
    "1.2.840.10008.1.2.4.81": {"jls_error": 2},  # JPEG-LS near-lossless: every value within 2
    "1.2.840.10008.1.2.4.91": {"j2k_cr": [2]},  # JPEG 2000 lossy, 2:1 (the frame is noise-like: 8:1 leaves little of it)
}
LOSSY_TOLERANCE = {"1.2.840.10008.1.2.4.81": 2.0, "1.2.840.10008.1.2.4.91": 32.0}
"""Largest mean absolute error accepted for a lossy syntax (JPEG-LS: its bound; JPEG 2000: 0.8 % of the 12-bit range, 8 measured)."""


class StepFailed(Exception):
    """A check of a step did not hold; the message says which."""


@dataclass(frozen=True)
class Step:
    name: str
    check: Callable[[Path], str]
    """Runs the step in the work folder; returns what it checked (one line) or raises."""
    needs: str | None = None
    """A step that must have passed first (its output is this step's input)."""


def test_frame() -> np.ndarray:
    """The 12-bit grey frame the generated files hold: a pattern with edges and every bit in use."""
    y, x = np.mgrid[0:ROWS, 0:COLUMNS]
    return (((y * 131 + x * 57) ^ (x * y)) % (1 << BITS)).astype(np.uint16)


def _grey_dataset(frame: np.ndarray) -> Dataset:
    """A minimal secondary-capture dataset holding ``frame`` uncompressed (explicit VR little endian)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID = "OT", "medtl^selftest", "SELFTEST"
    ds.Rows, ds.Columns = frame.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, BITS, BITS - 1, 0
    ds.PixelData = frame.tobytes()
    return ds


def _htj2k_dataset(syntax: str) -> Dataset:
    """The test frame as the bundled HTJ2K codestream (lossless, RPCL progression: valid for all three HTJ2K syntaxes)."""
    from pydicom.encaps import encapsulate

    ds = _grey_dataset(test_frame())
    ds.file_meta.TransferSyntaxUID = syntax
    ds.PixelData = encapsulate([(SELFTEST_RESOURCES / HTJ2K_CODESTREAM).read_bytes()])
    ds["PixelData"].VR = "OB"
    return ds


def _pydicom_file(name: str) -> Path:
    """One of pydicom's bundled test files, found without ``get_testdata_file`` (which may download)."""
    import pydicom.data

    path = Path(pydicom.data.__file__).parent / "test_files" / name
    if not path.is_file():
        raise StepFailed(f"pydicom's test file {name} is missing from {path.parent}")
    return path


def check_plugins(_work: Path) -> str:
    """The libraries import and every supported compressed syntax has an available decoder."""
    import highdicom  # noqa: F401
    import monai
    import nibabel  # noqa: F401
    import safetensors  # noqa: F401
    import torch
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    from medtl.dicom.pixels import DECODER_PACKAGES

    missing = [f"{UID(uid).name} ({packages})" for uid, packages in DECODER_PACKAGES.items() if not get_decoder(UID(uid)).is_available]
    if missing:
        raise StepFailed(f"no decoder for {len(missing)} transfer syntaxes: {'; '.join(missing)}")
    return f"torch {torch.__version__}, MONAI {monai.__version__}, decoders for {len(DECODER_PACKAGES)} compressed transfer syntaxes"


def check_dicom(work: Path) -> str:
    """One file per supported compressed syntax, written and decoded through :func:`medtl.dicom.pixels.decode_frame`."""
    import pydicom
    from pydicom.uid import UID

    from medtl.dicom.pixels import DECODER_PACKAGES, decode_frame

    folder = work / "dicom"
    folder.mkdir()
    frame = test_frame()
    for uid in DECODER_PACKAGES:
        syntax = UID(uid)
        path = folder / f"{uid}.dcm"
        if uid in PYDICOM_FILES:
            ds = pydicom.dcmread(_pydicom_file(PYDICOM_FILES[uid]))
            ds.file_meta.TransferSyntaxUID = syntax
        elif uid.startswith("1.2.840.10008.1.2.4.20"):
            ds = _htj2k_dataset(uid)
        else:
            ds = _grey_dataset(frame)
            ds.compress(syntax, frame, **ENCODER_OPTIONS.get(uid, {}))  # type: ignore[arg-type]
        ds.save_as(path, enforce_file_format=True)
        decoded = decode_frame(pydicom.dcmread(path), path)
        _check_decoded(decoded, ds, syntax, frame if uid not in PYDICOM_FILES else None)
    return f"{len(DECODER_PACKAGES)} compressed transfer syntaxes written or read and decoded (RLE, JPEG, JPEG-LS, JPEG 2000, HTJ2K)"


def _check_decoded(decoded: np.ndarray, ds: Dataset, syntax: UID, expected: np.ndarray | None) -> None:
    shape = (int(ds.Rows), int(ds.Columns)) + ((3,) if int(ds.SamplesPerPixel) == 3 else ())
    if decoded.shape != shape:
        raise StepFailed(f"{syntax.name}: decoded to shape {decoded.shape}, expected {shape}")
    if expected is None:
        if int(decoded.max()) == int(decoded.min()):
            raise StepFailed(f"{syntax.name}: decoded to a blank image")
        return
    error = float(np.abs(decoded.astype(np.int64) - expected.astype(np.int64)).mean())
    if error > LOSSY_TOLERANCE.get(str(syntax), 0.0):
        raise StepFailed(f"{syntax.name}: decoded values differ from the encoded ones (mean absolute error {error:.2f})")


def check_weights(_work: Path) -> str:
    """Every installed packaged weight file reads as a state dict; LiteMedSAM is verified, built and loaded."""
    from medtl.models.medsam import load_medsam
    from medtl.models.weights import PACKAGED, PackagedSource

    required = ("efficientnet-lite0",)  # a dependency of medtl: always bundled
    missing = [name for name in required if not PACKAGED[name].installed()]
    if missing:
        raise StepFailed(f"the {', '.join(missing)} weights are not installed")
    read = []
    for weights in PACKAGED.values():
        if weights.installed():
            state = PackagedSource(weights).state_dict()
            read.append(f"{weights.name} ({len(state)} tensors)")
    network = load_medsam()
    read.append(f"LiteMedSAM ({sum(p.numel() for p in network.parameters()) / 1e6:.1f} M parameters)")
    return "read " + ", ".join(read)


def _write_synthetic_task(folder: Path, count: int = 6) -> Path:
    """``count`` one-slice NIfTI images with a bright square each, their masks, and a datalist (4 training cases)."""
    import nibabel

    folder.mkdir()
    rng = np.random.default_rng(0)
    entries = []
    for index in range(count):
        mask = np.zeros((32, 32, 1), np.uint8)
        y, x = rng.integers(4, 18, size=2)
        mask[y : y + 10, x : x + 10] = 1
        image = (mask * 200.0 + rng.normal(0, 20, mask.shape)).astype(np.float32)
        for kind, array in (("image", image), ("mask", mask)):
            nibabel.save(nibabel.Nifti1Image(array, np.eye(4)), folder / f"{kind}{index}.nii.gz")
        entries.append({"image": f"image{index}.nii.gz", "label": f"mask{index}.nii.gz", "patient_id": f"P{index}"})
    document = {"training": entries[:4], "validation": entries[4:], "labels": {"0": "background", "1": "square"}, "modality": "OT"}
    (folder / "datalist.json").write_text(json.dumps(document), encoding="utf-8")
    return folder / "datalist.json"


def check_training(work: Path) -> str:
    """One epoch of a U-Net on the synthetic task, through the same call as ``medtl train`` and the app."""
    from medtl.training.run_folder import RunFolder
    from medtl.workflow.train import TrainRequest, train

    datalist = _write_synthetic_task(work / "task")
    steps = []
    result = train(
        TrainRequest(datalist, "segmentation", work / "run", model="unet", weights="none", epochs=1, device="cpu"),
        lambda event: steps.append(event) if type(event).__name__ == "StepProgress" else None,
    )
    if result.summary.stopped_because != "completed":
        raise StepFailed(f"training stopped because {result.summary.stopped_because}")
    if not RunFolder(result.out_dir).best_model_path.is_file():
        raise StepFailed(f"{result.out_dir}: the run wrote no best model")
    return f"{len(steps)} training steps, {result.summary.best_metric_name} {result.summary.best_metric:.3f}"


def check_prediction(work: Path) -> str:
    """The run from ``training`` predicts a mask on one image, through the same call as ``medtl predict``."""
    from medtl.workflow.predict import PredictedInput, PredictRequest, predict

    image = work / "task" / "image5.nii.gz"
    outcomes = list(predict(PredictRequest(work / "run", (image,), device="cpu")))
    if len(outcomes) != 1 or not isinstance(outcomes[0], PredictedInput):
        raise StepFailed(f"no prediction: {getattr(outcomes[0], 'reason', outcomes) if outcomes else 'nothing came back'}")
    mask = outcomes[0].prediction.mask.array  # type: ignore[union-attr]
    if mask.size != 32 * 32:
        raise StepFailed(f"the predicted mask has {mask.size} voxels, the image {32 * 32}")
    return f"mask of {mask.shape} predicted, {int((mask > 0).sum())} voxels labelled"


def _medtl_command() -> list[str]:
    """How to start this same medtl in a child process (the frozen executable, or this Python with ``-m medtl``)."""
    return [sys.executable] if getattr(sys, "frozen", False) else [sys.executable, "-m", "medtl"]


def check_app(work: Path) -> str:
    """``medtl app SAMPLE --screenshot`` in a child process, offscreen: the window renders the sample CT series."""
    from medtl.sample import sample_dicom_dir

    series = sample_dicom_dir() / "98892001" / "CT5N"
    png = work / "app.png"
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([*_medtl_command(), "app", str(series), "--screenshot", str(png)], env=environment, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise StepFailed(f"medtl app exited with status {done.returncode}: {last}")
    data = png.read_bytes() if png.is_file() else b""
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or len(data) < 20_000:
        raise StepFailed(f"the screenshot {png.name} is missing or nearly empty ({len(data)} bytes)")
    return f"the app rendered the sample CT offscreen ({len(data) // 1024} KiB PNG)"


STEPS: tuple[Step, ...] = (
    Step("plugins", check_plugins),
    Step("dicom", check_dicom),
    Step("weights", check_weights),
    Step("training", check_training),
    Step("prediction", check_prediction, needs="training"),
    Step("app", check_app),
)


def run_self_test(out: TextIO | None = None, steps: Sequence[Step] | None = None) -> int:
    """Run ``steps`` (:data:`STEPS`), one line each on ``out`` (stdout); 0 if all pass, 1 (and a last line naming them) otherwise."""
    out = out or sys.stdout
    steps = STEPS if steps is None else steps
    failed: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="medtl-self-test-") as folder:
        for step in steps:
            begin = time.perf_counter()
            if step.needs in failed:
                failed.append(step.name)
                print(f"{step.name:<10} FAIL {0:7.2f} s  not run: {step.needs} failed", file=out, flush=True)
                continue
            try:
                detail, status = step.check(Path(folder)), "ok  "
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as error:  # noqa: BLE001 - whatever breaks a step is reported as that step's failure
                failed.append(step.name)
                detail, status = _one_line(error), "FAIL"
            print(f"{step.name:<10} {status} {time.perf_counter() - begin:7.2f} s  {detail}", file=out, flush=True)
    total = time.perf_counter() - started
    if failed:
        print(f"self-test FAILED in {total:.1f} s: {', '.join(failed)}", file=out, flush=True)
        return 1
    print(f"self-test passed: {len(steps)} steps in {total:.1f} s", file=out, flush=True)
    return 0


def _one_line(error: BaseException) -> str:
    """The error as one line; where it is not one of medtl's own (a bug or a broken build), where it was raised too."""
    from medtl.errors import MedtlError

    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, (StepFailed, MedtlError)):
        return text
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    return f"{type(error).__name__}: {text}{where}"
