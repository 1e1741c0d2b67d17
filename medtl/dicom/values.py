"""Values read from a DICOM dataset and checked before use.

A value that cannot be read (a bad VR, text that is not a number), is not finite, or lies outside
what the attribute can mean is a :class:`~medtl.errors.DicomReadError` naming the file and the tag,
never a ``ValueError`` from deep inside, and never a number silently used as it is (a NaN slope, a
pixel spacing of 1e308). An absent or empty value is ``None``: what that means is the caller's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from medtl.dicom.messages import describe
from medtl.errors import DicomReadError

MAX_POSITION_MM = 1e6
"""Positions further than a kilometre from the scanner's origin are damage, not anatomy."""
MAX_SPACING_MM = 1e4
"""A pixel or slice spacing above ten metres is damage."""
MIN_SPACING_MM = 1e-6
"""So is one below a nanometre (a grid that small makes the affine singular)."""


def tag_name(keyword: str) -> str:
    """``RescaleSlope (0028,1053)``: how messages name an attribute."""
    tag = tag_for_keyword(keyword)
    return keyword if tag is None else f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def raw_value(item: Dataset, keyword: str, path: Path | str) -> Any:
    """The value of ``keyword`` in ``item`` as pydicom converts it; None if absent or empty."""
    try:
        value = item.get(keyword)
    except Exception as error:  # noqa: BLE001 - pydicom converts raw values on access and raises many kinds on damaged ones
        raise DicomReadError(path, f"{tag_name(keyword)} cannot be read ({describe(error)})") from None
    return None if value is None or value == "" or (isinstance(value, (bytes, MultiValue, list)) and len(value) == 0) else value


def _float(value: Any, keyword: str, path: Path | str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise DicomReadError(path, f"{tag_name(keyword)} is {_shown(value)}, not a number") from None
    if not math.isfinite(number):
        raise DicomReadError(path, f"{tag_name(keyword)} is {_shown(value)}, not a finite number")
    return number


def _shown(value: Any) -> str:
    text = repr(value if not isinstance(value, (MultiValue, list, tuple)) else list(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _check_range(number: float, keyword: str, path: Path | str, low: float | None, high: float | None, shown: Any) -> None:
    if (low is not None and number < low) or (high is not None and number > high):
        bounds = f"between {low:g} and {high:g}" if low is not None and high is not None else f"at least {low:g}" if low is not None else f"at most {high:g}"
        raise DicomReadError(path, f"{tag_name(keyword)} is {_shown(shown)}; it must be {bounds}")


def decimal(item: Dataset, keyword: str, path: Path | str, *, low: float | None = None, high: float | None = None) -> float | None:
    """A single finite number (the first of several, as readers of single-valued attributes do); None if absent."""
    return _decimal(raw_value(item, keyword, path), keyword, path, low, high)


def _decimal(value: Any, keyword: str, path: Path | str, low: float | None, high: float | None) -> float | None:
    if value is None:
        return None
    first = value[0] if isinstance(value, (MultiValue, list, tuple)) else value
    number = _float(first, keyword, path)
    _check_range(number, keyword, path, low, high, value)
    return number


def decimals(item: Dataset, keyword: str, count: int, path: Path | str, *, bound: float | None = None) -> tuple[float, ...] | None:
    """Exactly ``count`` finite numbers, each at most ``bound`` in magnitude; None if absent."""
    value = raw_value(item, keyword, path)
    if value is None:
        return None
    values: Sequence[Any] = value if isinstance(value, (MultiValue, list, tuple)) else [value]
    if len(values) != count:
        raise DicomReadError(path, f"{tag_name(keyword)} must have {count} numbers, got {_shown(value)}")
    numbers = tuple(_float(v, keyword, path) for v in values)
    if bound is not None and max(abs(n) for n in numbers) > bound:
        raise DicomReadError(path, f"{tag_name(keyword)} is {_shown(value)}; no value may exceed {bound:g} in magnitude")
    return numbers


def integer(item: Dataset, keyword: str, path: Path | str, *, low: int | None = None, high: int | None = None) -> int | None:
    """A single whole number within ``[low, high]``; None if absent."""
    value = raw_value(item, keyword, path)
    if isinstance(value, (MultiValue, list, tuple)) and len(value) != 1:
        raise DicomReadError(path, f"{tag_name(keyword)} is {_shown(value)}; it must be one number")
    number = _decimal(value, keyword, path, low, high)
    if number is None:
        return None
    if not number.is_integer():
        raise DicomReadError(path, f"{tag_name(keyword)} is {number:g}, not a whole number")
    return int(number)
