"""The licence line of a weights choice: packaged weights, a weight file, none."""

from __future__ import annotations

from medtl.models.licence import licence_text
from medtl.models.weights import PACKAGED

DEFAULT, SCRATCH = "(default)", "(none: from scratch)"


def test_each_weights_choice_names_its_licence() -> None:
    text = licence_text("efficientnet-lite0", DEFAULT, SCRATCH)
    assert PACKAGED["efficientnet-lite0"].licence in text and "Apache-2.0" in text
    assert "nothing to license" in licence_text(SCRATCH, DEFAULT, SCRATCH)
    assert licence_text("", DEFAULT, SCRATCH).startswith("The packaged weights that fit the model")
    assert "no such weight file" in licence_text("nonsense.bin", DEFAULT, SCRATCH)
