"""What licence a choice of pretrained weights comes under, in one line (the app shows it under the weights choice)."""

from __future__ import annotations

from medtl.errors import MedtlError
from medtl.models.weights import PACKAGED, available_sources, parse_source


def licence_text(choice: str, default: str, from_scratch: str) -> str:
    """What licence the weights named by ``choice`` come under: ``from_scratch`` names no weights, ``default`` (or
nothing) the packaged weights that fit, anything else a packaged name or a weight source (see
:func:`medtl.models.weights.parse_source`)."""
    choice = choice.strip()
    if choice == from_scratch:
        return "No pretrained weights: nothing to license."
    if choice in ("", default):
        installed = "; ".join(f"{w.name}: {w.licence}" for w in available_sources())
        return "The packaged weights that fit the model, if installed" + (f" ({installed})." if installed else " (none installed).")
    packaged = PACKAGED.get(choice)
    if packaged is not None:
        missing = "" if packaged.installed() else f" Not installed: {packaged.how_to_install()}"
        return f"Licence: {packaged.licence}.{missing}"
    try:
        return f"Licence: {parse_source(choice).licence}."
    except MedtlError as error:
        return str(error)
