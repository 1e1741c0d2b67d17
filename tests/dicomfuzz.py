"""A seeded fuzzer of real DICOM, for the fuzz test and the fuzz benchmark.

Each case is a folder holding one mutant: a copy of a real file (pydicom's test files) or of a
generated series (:mod:`tests.dicomgen`, classic and enhanced) with bytes flipped, cut or
inserted, a tag removed, or a value made NaN, infinite, huge, negative, zero or text. Every case
goes through what a user would run on it: ``scan`` (with a catalog), the app's loader
(``load_series`` on each series the scan found), ``load_path`` and ``medtl convert``, all in this
process. The only acceptable outcomes are a result whose voxels, spacing and origin are finite, or
a :class:`~medtl.errors.MedtlError` of one line (a choice among series lists them, one a line).

:func:`run_corpus` runs the cases in a child process, each under an alarm, and the whole under a
timeout, so that a hang is reported as the case that hung, not as a stuck test run.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEED_FILES = (
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm",
    "emri_small_RLE.dcm",
    "rtdose.dcm",
    "SC_rgb_rle.dcm",
    "SC_rgb_small_odd.dcm",
    "SC_ybr_full_422_uncompressed.dcm",
    "SC_jpeg_no_color_transform.dcm",
    "JPEG-LL.dcm",
    "emri_small.dcm",
    "ExplVR_BigEnd.dcm",
    "color-pl.dcm",
    "MR2_J2KI.dcm",
)
GENERATED = ("generated CT series", "generated enhanced CT")
KINDS = ("flip", "cut", "insert", "remove tag", "bad value")
# Attributes whose removal or damage matters to a loader, with the VR they are written with.
TARGETS = {
    "Rows": "US", "Columns": "US", "BitsAllocated": "US", "BitsStored": "US", "HighBit": "US", "SamplesPerPixel": "US",
    "PixelRepresentation": "US", "PlanarConfiguration": "US", "NumberOfFrames": "IS", "PhotometricInterpretation": "CS",
    "ImagePositionPatient": "DS", "ImageOrientationPatient": "DS", "PixelSpacing": "DS", "SliceThickness": "DS",
    "SpacingBetweenSlices": "DS", "RescaleSlope": "DS", "RescaleIntercept": "DS", "WindowCenter": "DS", "WindowWidth": "DS",
    "DoseGridScaling": "DS", "GridFrameOffsetVector": "DS", "SOPInstanceUID": "UI", "SeriesInstanceUID": "UI",
    "FrameOfReferenceUID": "UI", "Modality": "CS", "PixelData": "OB",
}  # fmt: skip
BAD_TEXT = ("nan", "inf", "-inf", "1e308", "-1e308", "-1", "0", "1e-320", "abc", "1\\2\\3\\4\\5\\6\\7", "", "NaN\\NaN")
BAD_SHORT = (0, 1, 2, 3, 7, 12, 33, 64, 255, 32768, 65535)


@dataclass(frozen=True)
class Case:
    number: int
    source: str
    kind: str
    detail: str
    folder: Path


def cases(root: Path, count: int, seed: int) -> Iterator[Case]:
    """``count`` mutants under ``root``, the same for the same ``seed``: sources and kinds taken in turn, the rest at random."""
    templates = _templates(root / "templates")
    sources = [*SEED_FILES, *GENERATED]
    for number in range(count):
        rng = random.Random(f"{seed}-{number}")
        source, kind = sources[number % len(sources)], KINDS[(number // len(sources) + number) % len(KINDS)]
        folder = root / f"case{number:04d}"
        shutil.copytree(templates[source], folder)
        files = sorted(folder.iterdir())
        victims = rng.sample(files, k=1 if len(files) == 1 or rng.random() < 0.7 else 2)
        details = [_mutate(victim, kind, rng) for victim in victims]
        yield Case(number, source, kind, "; ".join(details), folder)


def _templates(root: Path) -> dict[str, Path]:
    import numpy as np
    from pydicom.data import get_testdata_file

    from tests.dicomgen import SeriesSpec, phantom, write_enhanced, write_series

    if root.exists():
        shutil.rmtree(root)
    templates = {}
    for name in SEED_FILES:
        folder = templates[name] = root / name
        folder.mkdir(parents=True)
        shutil.copy(get_testdata_file(name, download=False), folder / name)
    values = phantom((6, 16, 20))
    write_series(templates.setdefault(GENERATED[0], root / "classic"), values, SeriesSpec(order="sorted", slope=1.5))
    write_enhanced(templates.setdefault(GENERATED[1], root / "enhanced") / "enhanced.dcm", np.asarray(values))
    return templates


def _mutate(path: Path, kind: str, rng: random.Random) -> str:
    data = bytearray(path.read_bytes())
    if kind == "flip":
        header = min(len(data), 2048)
        positions = [rng.randrange(header) if rng.random() < 0.7 else rng.randrange(len(data)) for _ in range(rng.randint(1, 16))]
        for position in positions:
            data[position] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
        return f"{path.name}: {len(positions)} bit(s) flipped"
    if kind == "cut":
        at = rng.randrange(len(data))
        path.write_bytes(bytes(data[:at]))
        return f"{path.name}: cut at byte {at} of {len(data)}"
    if kind == "insert":
        at, extra = rng.randrange(len(data)), bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        path.write_bytes(bytes(data[:at] + extra + data[at:]))
        return f"{path.name}: {len(extra)} byte(s) inserted at {at}"
    return _edit_element(path, kind, rng)


def _edit_element(path: Path, kind: str, rng: random.Random) -> str:
    import pydicom
    from pydicom.dataelem import RawDataElement
    from pydicom.datadict import tag_for_keyword
    from pydicom.encaps import encapsulate
    from pydicom.tag import Tag

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        present = [keyword for keyword in TARGETS if keyword in ds]
        keyword = rng.choice(present if kind == "remove tag" or rng.random() < 0.8 else list(TARGETS))
        tag = tag_for_keyword(keyword)
        if kind == "remove tag":
            if keyword in ds:
                del ds[keyword]
            detail = f"{keyword} removed"
        else:
            implicit, little = ds.original_encoding
            vr = TARGETS[keyword]
            if vr == "US":
                number = rng.choice(BAD_SHORT)
                raw = struct.pack("<H" if little is not False else ">H", number)
                detail = f"{keyword} = {number}"
            elif vr == "OB":
                raw = bytes(rng.randrange(256) for _ in range(rng.choice((0, 2, 10, 100))))
                if ds.file_meta.TransferSyntaxUID.is_encapsulated:
                    raw = encapsulate([raw]) if raw else raw
                detail = f"{keyword} = {len(raw)} random bytes"
            else:
                text = rng.choice(BAD_TEXT) if vr in ("DS", "IS") else rng.choice(("", "X" * 64, "1.2.3", "MONOCHROME3", "RTSTRUCT", "PALETTE COLOR"))
                raw = text.encode() + (b" " if len(text) % 2 else b"")
                detail = f"{keyword} = {text!r}"
            ds._dict[Tag(tag)] = RawDataElement(Tag(tag), vr, len(raw), raw, 0, bool(implicit), little is not False)
        try:
            ds.save_as(path)
        except Exception:  # noqa: BLE001 - pydicom will not write this damage: damage the bytes instead
            return _mutate(path, "flip", rng)
    return f"{path.name}: {detail}"


# --- running the cases ------------------------------------------------------------------------------


class Hang(BaseException):
    """A case ran past its alarm."""


def check_case(case: Case, catalog_path: Path) -> str:
    """``ok`` (a volume), ``refused`` (a one-line MedtlError) or a failure: what went wrong, in one line."""
    import numpy as np

    from medtl.cli import main
    from medtl.dicom.catalog import Catalog
    from medtl.dicom.scan import scan
    from medtl.dicom.series import NON_IMAGE_MODALITIES, load_path, load_series
    from medtl.errors import InvalidRequest, MedtlError

    outcomes: list[str] = []

    def attempt(what: str, work: Callable[[], object]) -> None:
        try:
            volume = work()
        except InvalidRequest as error:  # a choice among series: its message lists them
            outcomes.append(f"refused: {error.reason.splitlines()[0]}")
            return
        except MedtlError as error:
            text = str(error)
            outcomes.append(f"refused: {text}" if "\n" not in text else f"FAIL {what}: a message of several lines: {text!r}")
            return
        if volume is None:
            return
        finite = np.isfinite(volume.array).all() and np.isfinite(volume.spacing).all() and np.isfinite(volume.origin).all()
        outcomes.append("ok" if finite else f"FAIL {what}: non-finite voxels or geometry")

    result = scan(case.folder, catalog=Catalog(catalog_path), workers=1)
    for series in result.all_series():
        if series.rows is not None and series.modality not in NON_IMAGE_MODALITIES:
            attempt("load_series", lambda series=series: load_series(series.files))
    attempt("load_path", lambda: load_path(case.folder))
    output = case.folder.parent / f"{case.folder.name}.nii.gz"
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["convert", str(case.folder), "-o", str(output)])
    if code == 0:
        import nibabel

        image = nibabel.load(output)
        if not (np.isfinite(image.get_fdata()).all() and np.isfinite(image.affine).all()):
            return "FAIL convert: exit 0 with non-finite voxels or affine"
    elif code != 2 or not err.getvalue().startswith("medtl convert: error: "):
        return f"FAIL convert: exit {code}: {err.getvalue()[:300]!r}"
    failures = [outcome for outcome in outcomes if outcome.startswith("FAIL")]
    return failures[0] if failures else ("ok" if "ok" in outcomes else "refused")


def child(root: str, count: int, seed: int, seconds_per_case: int) -> None:
    """Run the corpus here, printing one JSON line per case (the entry point of :func:`run_corpus`'s child)."""
    import logging

    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")

    def alarm(signum: int, frame: object) -> None:
        raise Hang()

    signal.signal(signal.SIGALRM, alarm)
    catalog = Path(root) / "catalog.sqlite"
    for case in cases(Path(root), count, seed):
        print(json.dumps({"case": case.number, "started": True}), flush=True)
        signal.alarm(seconds_per_case)
        try:
            outcome = check_case(case, catalog)
        except Hang:
            outcome = f"FAIL hang: more than {seconds_per_case} s"
        except BaseException as error:  # noqa: BLE001 - what the fuzzer is looking for
            frames = traceback.extract_tb(error.__traceback__)
            ours = [f"{Path(f.filename).name}:{f.lineno}" for f in frames if f"{Path('medtl')}" in f.filename.replace(str(REPO), "")]
            where = ", ".join([*ours[-1:], f"{Path(frames[-1].filename).name}:{frames[-1].lineno}"])
            outcome = f"FAIL traceback: {type(error).__name__}: {str(error)[:200]} ({where})"
        finally:
            signal.alarm(0)
        print(json.dumps({"case": case.number, "source": case.source, "kind": case.kind, "detail": case.detail, "outcome": outcome}), flush=True)


@dataclass
class CorpusResult:
    outcomes: list[dict]
    hung: str | None  # the case running when the whole corpus timed out

    @property
    def failures(self) -> list[dict]:
        return [o for o in self.outcomes if o["outcome"].startswith("FAIL")]

    def counts(self) -> Counter:
        return Counter("failed" if o["outcome"].startswith("FAIL") else o["outcome"] for o in self.outcomes)


def run_corpus(root: Path, count: int, seed: int, seconds_per_case: int = 20, timeout: float = 600) -> CorpusResult:
    """Make and check ``count`` cases in a child process, in a new folder under ``root``; a case that hangs in C code is
    caught by ``timeout``."""
    root.mkdir(parents=True, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="fuzz-", dir=root)
    command = [sys.executable, "-c", f"from tests.dicomfuzz import child; child({folder!r}, {count}, {seed}, {seconds_per_case})"]
    try:
        done = subprocess.run(command, check=False, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        stdout, hung = done.stdout, None
        if done.returncode != 0:
            raise RuntimeError(f"the fuzz child failed (exit {done.returncode}): {done.stderr[-2000:]}")
    except subprocess.TimeoutExpired as expired:
        stdout = expired.stdout.decode() if isinstance(expired.stdout, bytes) else expired.stdout or ""
        hung = "unknown"
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    outcomes = [line for line in lines if "outcome" in line]
    if hung is not None:
        started = [line["case"] for line in lines if line.get("started")]
        hung = f"case {started[-1]}" if started else "before the first case"
    return CorpusResult(outcomes, hung)
