"""Weight sources: files (corrupt, truncated, malicious), bundles, runs, and URL downloads from a local server."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import random
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from medtl.errors import MedtlError
from medtl.models.spec import ModelSpec, build_model, spec_from_run
from medtl.models.weights import BundleSource, PackagedSource, RunSource, StateDictFile, UrlSource, load_state_dict_file, parse_source

STATE = {"conv.weight": torch.arange(24.0).reshape(2, 3, 2, 2), "conv.bias": torch.ones(2)}


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("MEDTL_WEIGHTS_CACHE", str(directory))
    return directory


def serialised(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def test_wrapped_checkpoints_are_unwrapped(tmp_path: Path) -> None:
    for wrapper in ("state_dict", "model"):
        path = tmp_path / f"{wrapper}.ckpt"
        path.write_bytes(serialised({wrapper: STATE, "epoch": 3, "optimizer": {"lr": 0.1}}))
        assert load_state_dict_file(path).keys() == STATE.keys()


def test_safetensors_file_loads(tmp_path: Path) -> None:
    save_file(STATE, tmp_path / "w.safetensors")
    torch.testing.assert_close(load_state_dict_file(tmp_path / "w.safetensors")["conv.weight"], STATE["conv.weight"])


@pytest.mark.parametrize("name", ["w.pt", "w.safetensors"])
def test_truncated_file_names_the_file_and_the_reason(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".pt"):
        data = serialised(STATE)
    else:
        save_file(STATE, path)
        data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MedtlError, match=rf"{name}: not a readable .* truncated or corrupt"):
        load_state_dict_file(path)


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes_are_reported_as_corrupt(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "noise.pth"
    path.write_bytes(random.Random(seed).randbytes(4096))
    with pytest.raises(MedtlError, match="noise.pth: not a readable PyTorch weight file"):
        load_state_dict_file(path)


class Exploit:
    """Pickles to a call of os.system: loading it without weights_only would run a command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def test_pickle_with_code_is_refused_and_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    path.write_bytes(serialised({"weight": torch.zeros(1), "payload": Exploit(marker)}))
    with pytest.raises(MedtlError, match=r"evil.pth: refused: .* \(it would call \w+\.system\)"):
        load_state_dict_file(path)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit is deprecated, yet users still have .ts files
def test_torchscript_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.ts"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    with pytest.raises(MedtlError, match="TorchScript is a program"):
        parse_source(str(path)).state_dict()


def bundle_tree(root: Path, member: str, data: bytes) -> None:
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "metadata.json").write_text("{}")
    (root / member).parent.mkdir(parents=True, exist_ok=True)
    (root / member).write_bytes(data)


def test_bundle_folder_and_zip(tmp_path: Path) -> None:
    folder = tmp_path / "spleen_ct_segmentation"
    bundle_tree(folder, "models/model.pt", serialised(STATE))
    assert isinstance(parse_source(str(folder)), BundleSource)
    assert parse_source(str(folder)).state_dict().keys() == STATE.keys()
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in folder.rglob("*"):
            out.write(path, f"spleen_ct_segmentation/{path.relative_to(folder)}")
    torch.testing.assert_close(parse_source(str(archive)).state_dict()["conv.bias"], STATE["conv.bias"])


def test_bundle_with_only_torchscript_is_refused(tmp_path: Path) -> None:
    bundle_tree(tmp_path / "b", "models/model.ts", b"not loaded")
    with pytest.raises(MedtlError, match="only TorchScript"):
        parse_source(str(tmp_path / "b")).state_dict()


def test_run_folder_rebuilds_its_model_with_its_best_weights(tmp_path: Path) -> None:
    spec = ModelSpec("classification", "resnet10", 2, 1, 3, arch_params={"widen_factor": 0.25})
    model, _ = build_model(spec)
    run = tmp_path / "run1"
    run.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, run / "best_model.safetensors")
    (run / "config.json").write_text(json.dumps({"train": {}, "model": spec.to_dict()}))
    again, report = build_model(spec_from_run(run))
    assert report.backbone_fraction == 1.0 and not report.new and not report.dropped
    torch.testing.assert_close(again.state_dict()["layer4.0.conv2.weight"], model.state_dict()["layer4.0.conv2.weight"])
    _, new_head = build_model(spec_from_run(run, num_outputs=5))
    assert new_head.new == ["fc.weight", "fc.bias"]
    with pytest.raises(MedtlError, match="fine-tune it as that architecture"):
        build_model(ModelSpec("classification", "resnet18", 2, 1, 3, f"run:{run}"))


def test_parse_source_kinds_and_errors(tmp_path: Path) -> None:
    (tmp_path / "w.pth").write_bytes(serialised(STATE))
    assert isinstance(parse_source(str(tmp_path / "w.pth")), StateDictFile)
    assert isinstance(parse_source("efficientnet-lite0"), PackagedSource)
    assert isinstance(parse_source(f"run:{tmp_path}"), RunSource)
    assert isinstance(parse_source("https://example.org/w.pt#sha256=" + "ab" * 32), UrlSource)
    with pytest.raises(MedtlError, match="needs its SHA-256"):
        parse_source("https://example.org/w.pt")
    with pytest.raises(MedtlError, match="no such weight file"):
        parse_source(str(tmp_path / "missing.pt"))
    with pytest.raises(MedtlError, match="not understood"):
        parse_source("imagenet")
    with pytest.raises(MedtlError, match="not a medtl run folder"):
        RunSource(tmp_path).run_spec()


class RangeServer(http.server.ThreadingHTTPServer):
    """Serves one payload at any path, honouring ``Range: bytes=N-``; records each request's Range and bytes sent."""

    def __init__(self, payload: bytes) -> None:
        super().__init__(("127.0.0.1", 0), RangeHandler)
        self.payload, self.ranges, self.sent = payload, [], 0


class RangeHandler(http.server.BaseHTTPRequestHandler):
    server: RangeServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        payload, header = self.server.payload, self.headers.get("Range")
        self.server.ranges.append(header)
        start = int(header[len("bytes=") : -1]) if header else 0
        self.send_response(206 if header else 200)
        if header:
            self.send_header("Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}")
        self.send_header("Content-Length", str(len(payload) - start))
        self.end_headers()
        self.wfile.write(payload[start:])
        self.server.sent += len(payload) - start

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[RangeServer]:
    payload = serialised({"weights": torch.randn(300, 300)})
    httpd = RangeServer(payload)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def url_of(server: RangeServer, digest: str | None = None) -> str:
    digest = digest or hashlib.sha256(server.payload).hexdigest()
    return f"http://127.0.0.1:{server.server_address[1]}/models/w.pt#sha256={digest}"


def test_download_verifies_caches_and_reports_progress(server: RangeServer, cache: Path) -> None:
    calls: list[tuple[int, int, str]] = []
    source = parse_source(url_of(server))
    state = source.state_dict(progress=lambda done, total, message="": calls.append((done, total, message)))
    assert state["weights"].shape == (300, 300)
    assert [p.name for p in cache.iterdir()] == [source.cached_path().name]
    assert any(done == total == len(server.payload) and m.startswith("downloading") for done, total, m in calls)
    source.state_dict()  # second time from the cache: no request
    assert server.ranges == [None]


def test_download_with_a_wrong_hash_is_refused_and_deleted(server: RangeServer, cache: Path) -> None:
    with pytest.raises(MedtlError, match=r"downloaded file has SHA-256 [0-9a-f]{64}, expected 0{64}"):
        parse_source(url_of(server, "0" * 64)).state_dict()
    assert not any(cache.iterdir())


def test_download_resumes_a_partial_file(server: RangeServer, cache: Path) -> None:
    source = parse_source(url_of(server))
    assert isinstance(source, UrlSource)
    half = len(server.payload) // 2
    partial = source.cached_path().with_name(source.cached_path().name + ".part")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(server.payload[:half])
    assert source.download().read_bytes() == server.payload
    assert server.ranges == [f"bytes={half}-"] and server.sent == len(server.payload) - half
    assert not partial.exists()


def test_unreachable_url_is_a_clear_error() -> None:
    with pytest.raises(MedtlError, match="download failed"):
        parse_source("http://127.0.0.1:9/w.pt#sha256=" + "0" * 64).state_dict()
