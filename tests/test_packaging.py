"""The installers' recipes, checked without building the 800 MB payload: what the bundle leaves out, the .deb's
layout and metadata (built from a stand-in bundle), the desktop and MIME files, the NSIS script and the macOS
Info.plist. `make package` and packaging/linux/test_deb.sh test the real builds."""

from __future__ import annotations

import configparser
import plistlib
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
sys.path.insert(0, str(PACKAGING))
import bundle_filter  # noqa: E402  (packaging/bundle_filter.py, which the spec imports the same way)

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_the_version_is_written_once_in_pyproject() -> None:
    import medtl

    assert medtl.__version__ == VERSION
    assert VERSION not in (ROOT / "medtl" / "__init__.py").read_text()


@pytest.mark.parametrize(
    ("destination", "unused"),
    [
        ("torch/test/test_api", True),
        ("torch/include/ATen/Tensor.h", True),
        ("torch/share/cmake/Torch/TorchConfig.cmake", True),
        ("torch/bin/protoc", True),
        ("torch/bin/torch_shm_manager", False),  # DataLoader workers' shared memory
        ("torch/lib/libtorchbind_test.so", True),
        ("torch/lib/libtorch_cpu.so", False),
        ("torch/testing/_internal/common_utils.py", False),  # torch.utils.checkpoint imports torch.testing._internal
        ("torch/testing/_comparison.py", False),
        ("PySide6/Qt/translations/qtbase_de.qm", True),
        ("PySide6/Qt/plugins/sqldrivers/libqsqlite.so", True),
        ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", True),
        ("PySide6/Qt/plugins/platformthemes/libqxdgdesktopportal.so", False),
        ("PySide6/Qt/plugins/platforms/libqxcb.so", False),
        ("PySide6/Qt/plugins/platforms/libqoffscreen.so", False),
        ("PySide6/Qt/plugins/imageformats/libqsvg.so", False),
        ("PySide6/Qt/lib/libQt6Core.so.6", False),
        ("numpy.libs/libscipy_openblas64_.so", False),
        ("resources/icons/app.svg", False),
    ],
)
def test_what_the_bundle_leaves_out(destination: str, unused: bool) -> None:
    assert bundle_filter.is_unused(destination) is unused


@pytest.mark.parametrize(
    ("destination", "stripped"),
    [
        ("torch/lib/libtorch_cpu.so", True),
        ("torch/_C.cpython-311-x86_64-linux-gnu.so", True),
        ("libpython3.11.so.1.0", True),
        ("python3.11/lib-dynload/_decimal.cpython-311-x86_64-linux-gnu.so", True),
        ("_libjpeg.cpython-311-x86_64-linux-gnu.so", True),
        ("numpy.libs/libscipy_openblas64_-32a4b2a6.so", False),  # auditwheel-patched: a stripped copy does not load
        ("scipy/linalg/_flapack.cpython-311-x86_64-linux-gnu.so", False),
        ("torch/__init__.pyc", False),
    ],
)
def test_which_libraries_are_stripped(destination: str, stripped: bool) -> None:
    assert bundle_filter.needs_stripping(destination) is stripped


def test_slim_drops_unused_files_and_strips_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    monkeypatch.setattr(bundle_filter, "stripped_copy", lambda source, cache: made.append(source) or f"{cache}/{Path(source).name}")
    monkeypatch.setattr(bundle_filter.sys, "platform", "linux")
    monkeypatch.setattr(bundle_filter.shutil, "which", lambda name: f"/usr/bin/{name}")
    toc = [
        ("torch/lib/libtorch_cpu.so", "/venv/torch/lib/libtorch_cpu.so", "BINARY"),
        ("torch/bin/test_jit", "/venv/torch/bin/test_jit", "DATA"),
        ("numpy.libs/libopenblas.so", "/venv/numpy.libs/libopenblas.so", "BINARY"),
        ("_libjpeg.cpython-311-x86_64-linux-gnu.so", "/venv/_libjpeg.cpython-311-x86_64-linux-gnu.so", "EXTENSION"),
    ]
    assert bundle_filter.slim(toc, tmp_path) == [
        ("torch/lib/libtorch_cpu.so", f"{tmp_path}/libtorch_cpu.so", "BINARY"),
        ("numpy.libs/libopenblas.so", "/venv/numpy.libs/libopenblas.so", "BINARY"),
        ("_libjpeg.cpython-311-x86_64-linux-gnu.so", f"{tmp_path}/_libjpeg.cpython-311-x86_64-linux-gnu.so", "EXTENSION"),
    ]
    assert made == ["/venv/torch/lib/libtorch_cpu.so", "/venv/_libjpeg.cpython-311-x86_64-linux-gnu.so"]


def test_prune_keeps_only_the_system_libraries_something_links_to(monkeypatch: pytest.MonkeyPatch) -> None:
    links = {
        "/venv/PySide6/Qt/plugins/platforms/libqxcb.so": ["libxcb.so.1", "libc.so.6"],
        "/sys/libxcb.so.1": ["libXau.so.6"],
        "/sys/libXau.so.6": [],
        "/sys/libgtk-3.so.0": ["libcairo.so.2"],  # only the left-out GTK theme plugin linked to these
        "/sys/libcairo.so.2": [],
        "/sys/libpython3.11.so.1.0": [],
    }
    monkeypatch.setattr(bundle_filter, "needed_libraries", lambda path: links[path])
    monkeypatch.setattr(bundle_filter.sys, "platform", "linux")
    monkeypatch.setattr(bundle_filter.shutil, "which", lambda name: f"/usr/bin/{name}")
    toc = [("PySide6/Qt/plugins/platforms/libqxcb.so", "/venv/PySide6/Qt/plugins/platforms/libqxcb.so", "BINARY")] + [
        (Path(path).name, path, "BINARY") for path in links if path.startswith("/sys/")
    ]
    kept = [destination for destination, _source, _type in bundle_filter.prune_unreferenced(toc)]
    assert kept == ["PySide6/Qt/plugins/platforms/libqxcb.so", "libxcb.so.1", "libXau.so.6", "libpython3.11.so.1.0"]


def test_needed_libraries_reads_an_elf_files_links() -> None:
    if shutil.which("objdump") is None:
        pytest.skip("binutils' objdump is not installed")
    import numpy.linalg._umath_linalg as linalg  # an extension module linked against the C library

    assert "libc.so.6" in bundle_filter.needed_libraries(linalg.__file__)


def desktop_entry(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(PACKAGING / "linux" / name, encoding="utf-8")
    return parser["Desktop Entry"]


def test_the_desktop_entries_open_dicom_files_and_folders_in_the_app() -> None:
    app, folder = desktop_entry("medtl.desktop"), desktop_entry("medtl-folder.desktop")
    assert app["Exec"] == folder["Exec"] == "/opt/medtl/medtl app %f"
    assert app["Icon"] == folder["Icon"] == "medtl" and app["Terminal"] == "false"
    assert app["MimeType"] == "application/dicom;" and "Science;" in app["Categories"]
    assert folder["MimeType"] == "inode/directory;" and folder["NoDisplay"] == "true"  # "Open with", never a menu entry
    if shutil.which("desktop-file-validate"):
        subprocess.run(["desktop-file-validate", str(PACKAGING / "linux" / "medtl.desktop"), str(PACKAGING / "linux" / "medtl-folder.desktop")], check=True)


def test_the_mime_definition_recognises_dicom_by_its_preamble() -> None:
    namespace = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    mime_type = ET.parse(PACKAGING / "linux" / "medtl-mime.xml").getroot().find("m:mime-type", namespace)
    assert mime_type is not None and mime_type.get("type") == "application/dicom"
    match = mime_type.find("m:magic/m:match", namespace)
    assert match is not None and (match.get("value"), match.get("offset")) == ("DICM", "128")


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .deb that build_deb.sh makes from a stand-in bundle (a script instead of the frozen program)."""
    if not (shutil.which("dpkg-deb") and shutil.which("objdump")):
        pytest.skip("dpkg-deb and objdump (Debian's dpkg and binutils) are needed")
    bundle = tmp_path_factory.mktemp("bundle") / "medtl"
    (bundle / "_internal").mkdir(parents=True)
    (bundle / "medtl").write_text("#!/bin/sh\necho medtl\n")
    (bundle / "medtl").chmod(0o755)
    shutil.copy(sys.executable, bundle / "_internal" / "python-stand-in")  # an ELF file: its C library becomes a dependency
    out = tmp_path_factory.mktemp("out")
    done = subprocess.run(["bash", str(PACKAGING / "linux" / "build_deb.sh"), str(bundle), str(out)], capture_output=True, text=True, check=True)
    return Path(done.stdout.strip().splitlines()[-1])


def test_the_deb_installs_under_opt_with_a_command_an_entry_and_an_icon(deb: Path) -> None:
    assert deb.name.startswith(f"medtl_{VERSION}_") and deb.suffix == ".deb"
    listing = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True).stdout
    paths = {line.split()[5].removeprefix(".") for line in listing.splitlines()}
    for expected in (
        "/opt/medtl/medtl", "/opt/medtl/_internal/python-stand-in", "/usr/bin/medtl", "/usr/share/applications/medtl.desktop",
        "/usr/share/applications/medtl-folder.desktop", "/usr/share/mime/packages/medtl.xml",
        "/usr/share/icons/hicolor/scalable/apps/medtl.svg", "/usr/share/icons/hicolor/256x256/apps/medtl.png",
    ):
        assert expected in paths, expected
    assert all(line.split()[1] == "root/root" for line in listing.splitlines())


def test_the_deb_metadata_has_the_version_and_the_c_library(deb: Path) -> None:
    field = lambda name: subprocess.run(["dpkg-deb", "--field", str(deb), name], capture_output=True, text=True, check=True).stdout.strip()  # noqa: E731
    assert (field("Package"), field("Version")) == ("medtl", VERSION)
    assert field("Depends").startswith("libc6 (>= ")
    control = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True, check=True).stdout
    import io
    import tarfile

    members = {member.name.removeprefix("./"): member for member in tarfile.open(fileobj=io.BytesIO(control))}
    assert members["postinst"].mode & 0o111 and members["postrm"].mode & 0o111


def test_the_nsis_script_compiles(tmp_path: Path) -> None:
    if shutil.which("makensis") is None:
        pytest.skip("NSIS is not installed (apt-get install nsis)")
    payload = tmp_path / "medtl"
    (payload / "_internal").mkdir(parents=True)
    for name in ("medtl.exe", "medtl-app.exe", "_internal/python311.dll"):
        (payload / name).write_bytes(b"stand-in")
    setup = tmp_path / "medtl-setup.exe"
    subprocess.run(
        ["makensis", "-V2", "-WX", f"-DVERSION={VERSION}", f"-DPAYLOAD={payload}", f"-DOUTFILE={setup}", str(PACKAGING / "windows" / "medtl.nsi")],
        check=True,
    )
    assert setup.read_bytes()[:2] == b"MZ"  # a Windows program


def test_the_macos_bundle_declares_dicom_documents() -> None:
    info = plistlib.loads((PACKAGING / "macos" / "Info.plist").read_bytes())
    content_types = [t for document in info["CFBundleDocumentTypes"] for t in document["LSItemContentTypes"]]
    assert "org.nema.dicom" in content_types and "public.folder" in content_types
    dicom = next(t for t in info["UTImportedTypeDeclarations"] if t["UTTypeIdentifier"] == "org.nema.dicom")
    assert dicom["UTTypeTagSpecification"]["public.mime-type"] == "application/dicom"
    assert "dcm" in dicom["UTTypeTagSpecification"]["public.filename-extension"]
