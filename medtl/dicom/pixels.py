"""Decoding DICOM pixel data to modality units.

- Grey-scale frames are mapped through the modality LUT: ``value = stored * slope + intercept``
  (RescaleSlope/Intercept at the top level, or in the Pixel Value Transformation functional
  group of enhanced objects, per frame; DoseGridScaling for RT Dose). CT values are HU.
- MONOCHROME1 is *not* inverted: values stay in modality units (inverting would change HU or
  detector values) and the loader records ``photometric: MONOCHROME1`` in the volume metadata
  so a viewer inverts the display.
- Colour frames (RGB, YBR_* and PALETTE COLOR) are returned as RGB ``[rows, columns, 3]``.
- Compressed transfer syntaxes go through pydicom's pixel-data plugins; when none is installed
  for a syntax, :class:`~medtl.errors.DicomReadError` names the syntax and the package to install.

Output dtype, when the rescale is integral: the narrowest of uint8/int16/uint16/int32 that holds
the rescaled range of the stored bits, with int16 tried first when that range is wider but the
actual values fit (typical CT); otherwise float32, computed in float32. See :func:`modality_dtypes`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, get_decoder
from pydicom.pixels.decoders.base import Decoder
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from medtl.dicom.messages import one_line
from medtl.dicom.values import decimal, integer, raw_value, tag_name
from medtl.errors import DicomReadError

_LIBJPEG = "pylibjpeg pylibjpeg-libjpeg"
_OPENJPEG = "pylibjpeg pylibjpeg-openjpeg"
# Transfer syntax UID -> the pip packages whose plugin decodes it.
DECODER_PACKAGES: dict[str, str] = {
    "1.2.840.10008.1.2.4.50": _LIBJPEG,  # JPEG Baseline
    "1.2.840.10008.1.2.4.51": _LIBJPEG,  # JPEG Extended
    "1.2.840.10008.1.2.4.57": _LIBJPEG,  # JPEG Lossless
    "1.2.840.10008.1.2.4.70": _LIBJPEG,  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80": "pyjpegls",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": "pyjpegls",  # JPEG-LS Near-lossless
    "1.2.840.10008.1.2.4.90": _OPENJPEG,  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91": _OPENJPEG,  # JPEG 2000
    "1.2.840.10008.1.2.4.201": _OPENJPEG,  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.202": _OPENJPEG,  # HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.203": _OPENJPEG,  # HTJ2K
    "1.2.840.10008.1.2.5": "pylibjpeg pylibjpeg-rle",  # RLE Lossless
}
_INTEGER_DTYPES = (np.uint8, np.int16, np.uint16, np.int32)
_LITTLE_ENDIAN_NATIVE = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


MAX_COMPRESSION_RATIO = 10_000
"""Compressed pixel data declared larger than this many times its file is damage: a blank 512 x 512 slice compresses ~1000-fold."""


MAX_PADDING_FRACTION = 0.05
"""Uncompressed pixel data this much longer than its header describes is a lying header, not padding."""
_SUBSAMPLED = ("YBR_FULL_422", "YBR_PARTIAL_422")


class ValuesDoNotFit(Exception):
    """A frame's modality values overflow the integer dtype chosen for the output (caller widens)."""


@dataclass(frozen=True)
class Rescale:
    """The linear modality LUT of one frame."""

    slope: float = 1.0
    intercept: float = 0.0

    @property
    def is_identity(self) -> bool:
        return self.slope == 1.0 and self.intercept == 0.0

    @property
    def is_integral(self) -> bool:
        return float(self.slope).is_integer() and float(self.intercept).is_integer()


def is_colour(ds: Dataset) -> bool:
    return int(ds.get("SamplesPerPixel", 1)) > 1 or ds.get("PhotometricInterpretation", "") == "PALETTE COLOR"


def transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    return UID(meta.TransferSyntaxUID) if meta is not None and "TransferSyntaxUID" in meta else UID("1.2.840.10008.1.2")


def _rescale_from(item: Dataset, default: Rescale, path: Path) -> Rescale:
    slope = decimal(item, "RescaleSlope", path)
    intercept = decimal(item, "RescaleIntercept", path)
    if slope == 0:
        raise DicomReadError(path, f"{tag_name('RescaleSlope')} is 0, which would make every pixel the same value")
    return Rescale(default.slope if slope is None else slope, default.intercept if intercept is None else intercept)


def rescale_of(ds: Dataset, path: Path) -> Rescale:
    """The top-level modality LUT of a classic image (DoseGridScaling for RT Dose); none for colour, which has no modality LUT."""
    if is_colour(ds):
        return Rescale()
    if ds.get("Modality") == "RTDOSE":
        scaling = decimal(ds, "DoseGridScaling", path)
        if scaling is not None:
            if scaling <= 0:
                raise DicomReadError(path, f"{tag_name('DoseGridScaling')} is {scaling:g}; it must be positive")
            return Rescale(scaling, 0.0)
    return _rescale_from(ds, Rescale(), path)


def functional_item(ds: Dataset, frame: int, sequence: str, path: Path) -> Dataset | None:
    """The first item of functional group ``sequence`` for ``frame``: per-frame if present, else shared."""
    for groups in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        items = raw_value(ds, groups, path)
        if not items:
            continue
        group = items[min(frame, len(items) - 1)] if groups.startswith("PerFrame") else items[0]
        value = raw_value(group, sequence, path)
        if value:
            return value[0]
    return None


def frame_rescales(ds: Dataset, path: Path) -> list[Rescale]:
    """The modality LUT of every frame of a (possibly enhanced) multi-frame object."""
    default = rescale_of(ds, path)
    count = int(ds.get("NumberOfFrames", 1) or 1)
    if "PerFrameFunctionalGroupsSequence" not in ds or is_colour(ds):
        return [default] * count
    rescales = []
    for frame in range(count):
        item = functional_item(ds, frame, "PixelValueTransformationSequence", path)
        rescales.append(default if item is None else _rescale_from(item, default, path))
    return rescales


def stored_range(ds: Dataset) -> tuple[int, int]:
    """The range of stored values that BitsStored and PixelRepresentation allow (of a checked pixel module)."""
    bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 16)
    if int(ds.get("PixelRepresentation", 0)) == 1:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def check_pixel_module(ds: Dataset, path: Path, pixel_bytes: int | None, file_size: int) -> int:
    """Refuse a pixel module that cannot describe its pixel data, before any of its values is used; returns the
    bytes of uncompressed pixel data beyond what it describes (trailing padding, for the caller to mention).

    Every attribute that sizes or interprets the pixels must be readable and in range. With
    ``pixel_bytes`` (the length of uncompressed Pixel Data) the declared size must match it: fewer
    bytes are a cut file; more than ``MAX_PADDING_FRACTION`` more mean that the header lies (e.g.
    BitsAllocated 8 on 16-bit pixels, or Rows smaller than the image). Either would silently give
    wrong values. Without it (compressed or unknown), the declared size is bounded by
    ``MAX_COMPRESSION_RATIO`` times the file's size, so that a damaged header cannot ask for gigabytes of memory.
    """
    rows = integer(ds, "Rows", path, low=1, high=65535)
    columns = integer(ds, "Columns", path, low=1, high=65535)
    if rows is None or columns is None:
        raise DicomReadError(path, "is not an image (no Rows/Columns)")
    samples = integer(ds, "SamplesPerPixel", path, low=1, high=3) or 1
    if samples == 2:
        raise DicomReadError(path, f"{tag_name('SamplesPerPixel')} is 2; it must be 1 (grey) or 3 (colour)")
    bits = integer(ds, "BitsAllocated", path, low=1, high=64)
    if bits not in (1, 8, 16, 32, 64):
        raise DicomReadError(path, f"{tag_name('BitsAllocated')} is {bits}; it must be 1, 8, 16, 32 or 64")
    integer(ds, "BitsStored", path, low=1, high=bits)
    integer(ds, "PixelRepresentation", path, low=0, high=1)
    frames = integer(ds, "NumberOfFrames", path, low=1) or 1
    photometric = raw_value(ds, "PhotometricInterpretation", path)
    if photometric == "PALETTE COLOR":
        descriptor = raw_value(ds, "RedPaletteColorLookupTableDescriptor", path)
        if descriptor is None or len(descriptor) != 3 or descriptor[2] not in (8, 16):
            raise DicomReadError(path, f"{tag_name('RedPaletteColorLookupTableDescriptor')} must be 3 numbers ending in 8 or 16 bits")
    per_frame = raw_value(ds, "PerFrameFunctionalGroupsSequence", path)
    if per_frame is not None and len(per_frame) != frames:
        raise DicomReadError(path, f"{tag_name('PerFrameFunctionalGroupsSequence')} has {len(per_frame)} items for {frames} frames")
    values_per_pixel = 2 if samples == 3 and photometric in _SUBSAMPLED else samples  # 4:2:2 keeps two values a pixel
    expected = (rows * columns * values_per_pixel * frames * bits + 7) // 8
    declared = f"Rows x Columns x SamplesPerPixel x NumberOfFrames x BitsAllocated ({rows} x {columns} x {samples} x {frames} x {bits} bits)"
    if pixel_bytes is None:
        if expected > MAX_COMPRESSION_RATIO * max(file_size, 1):
            raise DicomReadError(path, f"{declared} make {expected / 2**20:.0f} MiB of pixels, impossible in a file of {file_size} bytes")
        return 0
    padding = pixel_bytes - expected
    if padding < 0 or padding > max(1, MAX_PADDING_FRACTION * expected):
        raise DicomReadError(path, f"the Pixel Data holds {pixel_bytes} bytes but {declared} make {expected}; the header does not describe the pixels")
    return padding if padding > 1 else 0  # one byte pads an odd length to an even one, as DICOM requires


def _narrowest_integer(low: float, high: float) -> np.dtype | None:
    for dtype in _INTEGER_DTYPES:
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.dtype(dtype)
    return None


def modality_dtypes(ds: Dataset, rescales: Iterable[Rescale]) -> list[np.dtype]:
    """Output dtypes to try, narrowest first.

    Colour: the decoded dtype (the palette's entry size for PALETTE COLOR). Non-integral rescale:
    float32. Integral rescale: the narrowest integer type that holds the whole stored range after
    rescale; when that is wider than int16 (e.g. 16 stored bits with intercept -1024), int16 is
    tried first and the loader widens only if a frame's actual values overflow it
    (:class:`ValuesDoNotFit`), which costs a second read of the series.
    """
    if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
        entry_bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
        return [np.dtype(np.uint8 if entry_bits <= 8 else np.uint16)]
    if is_colour(ds):
        return [np.dtype(np.uint8 if int(ds.get("BitsAllocated", 8)) <= 8 else np.uint16)]
    rescales = list(rescales)
    if not all(r.is_integral for r in rescales):
        return [np.dtype(np.float32)]
    low, high = stored_range(ds)
    ends = [end * r.slope + r.intercept for r in rescales for end in (low, high)]
    exact = _narrowest_integer(min(ends), max(ends))
    if exact is None:
        return [np.dtype(np.float32)]
    if exact.itemsize > 2:
        return [np.dtype(np.int16), exact]
    return [exact]


def _decoder(ds: Dataset, path: Path) -> Decoder:
    syntax = transfer_syntax(ds)
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise DicomReadError(path, f"pixel data in transfer syntax '{syntax.name}' ({syntax}) cannot be decoded by pydicom") from None
    if not decoder.is_available:
        package = DECODER_PACKAGES.get(str(syntax))
        how = f"`pip install {package}`" if package else "one of: " + "; ".join(decoder.missing_dependencies)
        raise DicomReadError(path, f"no decoder is installed for transfer syntax '{syntax.name}' ({syntax}); install one with {how}")
    return decoder


def decode_frame(ds: Dataset, path: Path, frame: int | None = None) -> np.ndarray:
    """Stored values of one frame (``None``: the only frame): ``[rows, columns]`` or RGB ``[rows, columns, 3]``."""
    if "PixelData" not in ds:
        raise DicomReadError(path, "has no pixel data (not an image)")
    if frame is None and int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise DicomReadError(path, "has several frames; a frame index is needed")
    pixels = raw_value(ds, "PixelData", path)  # a value pydicom cannot convert (a damaged VR) is named as such
    native = native_frame(ds, pixels) if isinstance(pixels, bytes) else None
    if native is not None:
        return native
    decoder = _decoder(ds, path)
    try:
        array, _ = decoder.as_array(ds, index=frame, as_rgb=True)
        if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
            array = apply_color_lut(array, ds)
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as error:  # noqa: BLE001 - any decoder failure is a property of the file; a Rust decoder's panic is not an Exception
        raise DicomReadError(path, f"cannot decode pixel data ({transfer_syntax(ds).name}): {one_line(str(error))}") from error
    return array


def native_dtype(ds: Dataset) -> np.dtype | None:
    """The numpy dtype of uncompressed little-endian grey pixel data whose stored bits fill the word; None otherwise.

    Such pixel data (the common case, e.g. 16-bit CT) is read as it lies, without pydicom's general decoder.
    """
    if transfer_syntax(ds) not in _LITTLE_ENDIAN_NATIVE or is_colour(ds):
        return None
    bits = int(ds.get("BitsAllocated", 0))
    if bits not in (8, 16, 32) or int(ds.get("BitsStored", 0)) != bits:
        return None
    return np.dtype(f"<{'i' if int(ds.get('PixelRepresentation', 0)) == 1 else 'u'}{bits // 8}")


def native_frame(ds: Dataset, data: bytes) -> np.ndarray | None:
    """A zero-copy view of the pixel bytes ``data`` of single-frame ``ds`` when :func:`native_dtype` applies; None otherwise."""
    dtype = native_dtype(ds)
    if dtype is None or int(ds.get("NumberOfFrames", 1) or 1) != 1:
        return None
    count = int(ds.Rows) * int(ds.Columns)
    if len(data) < count * dtype.itemsize:
        return None  # let pydicom's decoder report it
    return np.frombuffer(data, dtype, count=count).reshape(int(ds.Rows), int(ds.Columns))


def write_modality(stored: np.ndarray, rescale: Rescale, out: np.ndarray) -> None:
    """Write ``stored * slope + intercept`` into ``out`` (one slice) without temporaries.

    Float output is computed in float32. Integer output is range-checked from the slice's
    extremes first and raises :class:`ValuesDoNotFit` when ``out``'s dtype is too narrow.
    """
    if out.dtype.kind == "f":
        np.copyto(out, stored, casting="unsafe")
        if not rescale.is_identity:
            np.multiply(out, rescale.slope, out=out)
            np.add(out, rescale.intercept, out=out)
        return
    if rescale.is_identity and np.can_cast(stored.dtype, out.dtype):
        np.copyto(out, stored)
        return
    if not rescale.is_integral:
        raise ValueError(f"rescale {rescale} needs a float output, not {out.dtype}")
    slope, intercept = int(rescale.slope), int(rescale.intercept)
    if stored.size:
        ends = (int(stored.min()) * slope + intercept, int(stored.max()) * slope + intercept)
        info = np.iinfo(out.dtype)
        if min(ends) < info.min or max(ends) > info.max:
            raise ValuesDoNotFit(out.dtype)
    # Every result fits ``out``, so wrapping (modular) integer arithmetic in its dtype is exact.
    np.copyto(out, stored, casting="unsafe")
    if slope != 1:
        np.multiply(out, np.array(slope).astype(out.dtype), out=out)
    if intercept:
        np.add(out, np.array(intercept).astype(out.dtype), out=out)
