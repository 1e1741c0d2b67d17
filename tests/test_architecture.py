"""The two halves stay apart (docs/ARCHITECTURE.md): the engine (``medtl/``) and the app's view models
(``ui/models/``) never import Qt; the engine never imports the app, except to start it; view models never
import widgets. Checked in the source (every import statement, lazy ones included) and by importing."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
QT = {"PySide6", "PySide2", "PyQt5", "PyQt6", "shiboken6", "superqt", "pyqtgraph", "qtpy"}
APP_ENTRY = ROOT / "medtl" / "cli" / "app_command.py"
"""`medtl app`: the one engine module that may import the app (``ui.app``), inside its ``run``."""


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` statement anywhere in ``path`` names (absolute imports)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_imported_modules_finds_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from PySide6.QtCore import Qt\n    import superqt.utils\n")
    assert imported_modules(module) == {"os", "PySide6.QtCore", "superqt.utils"}


@pytest.mark.parametrize("folder", ["medtl", "ui/models"])
def test_no_qt_import_in_the_source(folder: str) -> None:
    offending = [
        f"{path.relative_to(ROOT)}: {name}" for path in sources(folder) for name in sorted(imported_modules(path)) if name.split(".")[0] in QT
    ]
    assert sources(folder) and not offending


def test_the_engine_imports_the_app_only_to_start_it() -> None:
    offending = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sources("medtl")
        for name in sorted(imported_modules(path))
        if name.split(".")[0] == "ui" and not (path == APP_ENTRY and name == "ui.app")
    ]
    assert not offending


def test_view_models_import_no_widgets() -> None:
    offending = [
        f"{path.relative_to(ROOT)}: {name}" for path in sources("ui/models") for name in sorted(imported_modules(path)) if name.startswith(("ui.qt", "ui.app"))
    ]
    assert not offending


def test_importing_the_engine_and_the_view_models_loads_no_qt() -> None:
    packages = sorted(f"medtl.{path.parent.name}" for path in (ROOT / "medtl").glob("*/__init__.py"))
    modules = sorted({*packages, *(f"medtl.render.{p.stem}" for p in sources("medtl/render")), *(f"ui.models.{p.stem}" for p in sources("ui/models"))})
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name.removesuffix('.__init__'))\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(QT)!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "medtl.dicom" in packages and "ui.models.viewer_model" in modules
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
