"""What the frozen bundle leaves out, which of its libraries are stripped, and the system libraries it no longer needs.

Used by ``medtl.spec`` on the TOC lists (``(destination, source, typecode)``) that PyInstaller's
analysis collected. Every rule names files the app never loads: torch's C++ test programs, headers
and test libraries, Qt's translations (the app is English only) and the Qt plugins of features the
app does not use. PyInstaller's own ``strip=True`` is not used: it strips every library, and a
stripped copy of numpy's auditwheel-patched OpenBLAS no longer loads. Only the libraries in
:data:`STRIPPED`, which ship with full symbol tables (``libtorch_cpu.so``: 434 MB, 345 MB stripped),
are stripped, as copies.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

EXCLUDED_MODULES = (
    "tkinter", "matplotlib", "IPython", "pytest", "_pytest", "SimpleITK",
    # timm imports torchvision and huggingface_hub (with hf_xet); LiteMedSAM's four timm helpers come from torch instead
    # (medtl.models.medsam). cryptography: only requests/urllib3's optional pyOpenSSL support reaches it.
    "timm", "torchvision", "huggingface_hub", "hf_xet", "cryptography", "OpenSSL",
    "torch.utils.tensorboard", "torch.utils.benchmark",  # (torch.testing._internal stays: torch.utils.checkpoint imports it)
    # nilearn's Python (and the scikit-learn and pandas it imports): medtl reads nilearn's MNI152 files itself
    # (medtl.mni152; the spec ships the files); MONAI imports scikit-learn and pandas only as optional extras.
    "nilearn", "sklearn", "pandas",
    # scikit-image (with imageio, tifffile): the lasso and region growing draw with medtl.annotate.raster, pictures
    # load with Pillow; only the developers' task builders (medtl.data.tasks) use it. MONAI imports it as an extra.
    "skimage", "imageio", "tifffile",
    # SciPy but ndimage: MONAI imports the rest only as optional extras (without scipy.spatial's KDTree its Hausdorff
    # distance measures with ndimage's exact distance transform). scipy.special, which ndimage imports, is replaced by
    # the two functions ndimage calls (SUBSTITUTES); it and linalg link SciPy's own OpenBLAS and gfortran (30 MB).
    "scipy.optimize", "scipy.stats", "scipy.signal", "scipy.interpolate", "scipy.integrate", "scipy.io", "scipy.fft",
    "scipy.special", "scipy.linalg", "scipy.sparse", "scipy.spatial",
    # Reached only by torch.compile and C++ extension builds (pygments stays: superqt imports it); triton is torch.compile's
    # GPU compiler, in CUDA builds only (718 MB).
    "networkx", "setuptools", "triton",
    # Pillow's AVIF codec (with its 5 MB libavif) and its Tk bridge: pictures are PNG, JPEG or TIFF; Pillow skips a
    # plugin it cannot import.
    "PIL._avif", "PIL.AvifImagePlugin", "PIL._imagingtk", "PIL.ImageTk",
    # Qt bindings the app never imports (the Qt libraries that its plugins link to are still collected by those links)
    "PySide6.QtOpenGL", "PySide6.QtOpenGLWidgets", "PySide6.QtNetwork", "PySide6.QtDBus",
)  # fmt: skip
"""Python modules (with their submodules) the frozen build leaves out; ``tests/bundle_simulation.py`` makes them
unimportable to check that the engine works without them."""
SUBSTITUTES = {"scipy.special": "scipy_special_subset"}
"""Left-out modules the frozen build replaces by a module of ``packaging/`` with the part medtl reaches, registered
under the left-out name by ``rthook_substitutes.py`` (and by ``tests/bundle_simulation.py``)."""
TORCH_UNUSED_DIRS = ("test", "include", "share")
"""Under ``torch/``: C++ test programs and data, C/C++ headers, CMake files (``testing/_internal`` stays: ``torch.utils.checkpoint`` imports it)."""
TORCH_KEPT_PROGRAMS = ("torch_shm_manager", "torch_shm_manager.exe")
"""The only program in ``torch/bin`` torch runs itself (shared memory between DataLoader workers)."""
TORCH_TEST_LIBRARIES = tuple(
    prefix + name for name in ("aoti_custom_ops", "backend_with_compiler", "jitbackend_test", "torchbind_test") for prefix in ("lib", "")
)
"""Libraries in ``torch/lib`` built only for torch's own test suite (Linux ``lib*.so``, Windows ``*.dll``)."""
QT_UNUSED_PLUGINS = (
    "designer", "egldeviceintegrations", "generic", "networkinformation", "printsupport", "qmltooling",
    "sqldrivers", "tls", "wayland-graphics-integration-server",
)
"""Qt plugin folders for features the app does not use (Designer, embedded EGL, input devices, networking, printing, QML, SQL, compositors)."""
QT_UNUSED_PLUGIN_FILES = ("libqgtk3.so",)
"""The GTK 3 platform theme: it loads GTK, cairo and pango; the app has its own style and Qt's own file dialogs
(the XDG desktop portal theme is kept)."""


def is_unused(destination: str) -> bool:
    """Whether the file that would land at ``destination`` (relative to the bundle) is never used by medtl."""
    parts = PurePosixPath(destination.replace("\\", "/")).parts
    if len(parts) < 2:
        return False
    top, rest = parts[0], "/".join(parts[1:])
    if top == "torch":
        if any(rest == folder or rest.startswith(folder + "/") for folder in TORCH_UNUSED_DIRS):
            return True
        if parts[1] == "bin":
            return parts[-1] not in TORCH_KEPT_PROGRAMS
        if parts[1] == "lib":
            return parts[-1].split(".")[0] in TORCH_TEST_LIBRARIES
        return False
    if top in ("PySide6", "shiboken6"):
        qt_path = rest.removeprefix("Qt/")
        if qt_path.startswith("translations/"):
            return True
        return qt_path.startswith("plugins/") and len(parts) > 3 and (parts[-2] in QT_UNUSED_PLUGINS or parts[-1] in QT_UNUSED_PLUGIN_FILES)
    return False


STRIPPED = ("torch/", "python3.", "libpython3", "_libjpeg.", "_openjpeg.", "_CharLS.")
"""Destinations whose shared objects ship with full symbol tables and load stripped: torch's libraries, Python's
own (libpython, lib-dynload) and the JPEG decoders' extensions (~55 MB of the 90 MB saved is libtorch_cpu.so)."""


def needs_stripping(destination: str) -> bool:
    """Whether the shared object at ``destination`` is stripped (numpy's and scipy's, patched by auditwheel, are not)."""
    path = PurePosixPath(destination.replace("\\", "/"))
    return (path.suffix == ".so" or ".so." in path.name) and str(path).startswith(STRIPPED)


def stripped_copy(source: str, cache: Path) -> str:
    """A copy of ``source`` with its symbol table stripped (``strip --strip-unneeded``), made once into ``cache``."""
    origin = Path(source)
    target = cache / origin.name
    stamp = target.with_name(target.name + ".source")
    signature = f"{origin.resolve()} {origin.stat().st_size} {origin.stat().st_mtime_ns}"
    if not (target.is_file() and stamp.is_file() and stamp.read_text() == signature):
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, target)
        subprocess.run(["strip", "--strip-unneeded", str(target)], check=True)
        stamp.write_text(signature)
    return str(target)


def slim(toc: list[tuple[str, str, str]], cache: Path) -> list[tuple[str, str, str]]:
    """``toc`` without the unused files, torch's libraries replaced by stripped copies where ``strip`` exists (Linux)."""
    strip = sys.platform.startswith("linux") and shutil.which("strip") is not None
    kept = []
    for destination, source, typecode in toc:
        if is_unused(destination):
            continue
        if strip and typecode in ("BINARY", "EXTENSION") and needs_stripping(destination):
            source = stripped_copy(source, cache)
        kept.append((destination, source, typecode))
    return kept


SOURCE_READERS = re.compile(
    r"\b(_overload|_overload_method|boolean_dispatch|install_config_module|getsource|getsourcelines|getsourcefile|findsource"
    r"|get_source_lines_and_file|_jit_internal|jit\.script|jit\.ignore|jit\.unused|jit\.export|_script_if_tracing)\b"
)
"""What marks a torch module whose source torch reads at run time: TorchScript overloads and boolean dispatch
(``torch.nn.functional``), scripted functions, and config modules (``install_config_module`` reads their comments)."""


def torch_sources_kept(torch_dir: Path) -> dict[str, bool]:
    """Every torch module (dotted name) and whether it ships as a ``.py`` file beside its bytecode: if it matches :data:`SOURCE_READERS`.

    The others ship as bytecode only (in the archive), 33 of torch's 41 MB of sources left out. A module is
    matched by its own text; ``tests/test_bundle_simulation.py`` runs training, prediction, export and
    Grad-CAM with only the kept sources readable, as in the frozen build.
    """
    modules = {}
    for path in sorted(torch_dir.rglob("*.py")):
        relative = path.relative_to(torch_dir.parent).with_suffix("")
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        modules[".".join(parts)] = SOURCE_READERS.search(path.read_text(encoding="utf-8", errors="replace")) is not None
    return modules


def needed_libraries(path: str) -> list[str]:
    """The sonames an ELF file links to (its DT_NEEDED entries, read with binutils' ``objdump -p``)."""
    dump = subprocess.run(["objdump", "-p", path], capture_output=True, text=True, check=False).stdout
    return re.findall(r"^\s+NEEDED\s+(\S+)$", dump, re.MULTILINE)


def prune_unreferenced(toc: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """``toc`` without the top-level system libraries that nothing kept links to any more (Linux).

    PyInstaller collects a library's dependencies before :func:`slim` leaves the library out (the GTK
    theme plugin pulls GTK, cairo and pango); this walks the DT_NEEDED links from everything else
    (Python extensions, package libraries, Qt plugins, libpython) and keeps only what is reached.
    """
    if not (sys.platform.startswith("linux") and shutil.which("objdump")):
        return toc
    candidates = {
        destination: source
        for destination, source, typecode in toc
        if typecode == "BINARY" and "/" not in destination and not destination.startswith("libpython")
    }
    pending = [source for destination, source, typecode in toc if typecode in ("BINARY", "EXTENSION") and destination not in candidates]
    reached: set[str] = set()
    while pending:
        for name in needed_libraries(pending.pop()):
            if name in candidates and name not in reached:
                reached.add(name)
                pending.append(candidates[name])
    return [entry for entry in toc if entry[0] not in candidates or entry[0] in reached]
