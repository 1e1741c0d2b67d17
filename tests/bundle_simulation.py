"""A pytest plugin (``-p tests.bundle_simulation``): the Python environment of the frozen build, as far as it differs.

The frozen build leaves some modules out (``packaging/bundle_filter.EXCLUDED_MODULES``) and ships most torch modules
as bytecode only (``bundle_filter.torch_sources_kept``). Loaded before anything else is imported, this makes those
modules unimportable (but pytest's own) and the other torch modules' sources unreadable to ``inspect`` and
``linecache``, so that the tests run under it fail where the bundle would.
"""

from __future__ import annotations

import importlib.util
import linecache
import os
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packaging"))
import bundle_filter  # noqa: E402

TORCH_DIR = Path(importlib.util.find_spec("torch").submodule_search_locations[0])  # type: ignore[index, union-attr]
KEPT = [name for name, kept in bundle_filter.torch_sources_kept(TORCH_DIR).items() if kept]
READABLE = {str(TORCH_DIR.parent.joinpath(*name.split(".")).with_suffix(".py")) for name in KEPT} | {
    str(TORCH_DIR.parent.joinpath(*name.split("."), "__init__.py")) for name in KEPT
}
HIDDEN: set[str] = set()
"""The torch files whose source something asked for (a warning's line, a traceback, TorchScript) and did not get."""


def _hidden(filename: str) -> bool:
    if filename.startswith(str(TORCH_DIR) + os.sep) and filename.endswith(".py") and filename not in READABLE:
        HIDDEN.add(filename)
        return True
    return False


def _guard(read: Callable[..., list[str]]) -> Callable[..., list[str]]:
    def guarded(filename: str, *args: object, **kwargs: object) -> list[str]:
        return [] if _hidden(filename) else read(filename, *args, **kwargs)

    return guarded


linecache.getlines = _guard(linecache.getlines)
linecache.updatecache = _guard(linecache.updatecache)

LEFT_OUT = tuple(name for name in bundle_filter.EXCLUDED_MODULES if name not in ("pytest", "_pytest"))
already = [name for name in sys.modules if any(name == left or name.startswith(left + ".") for left in LEFT_OUT)]
assert not already, f"load this plugin first (-p): already imported: {already[:5]}"
for name in LEFT_OUT:  # as if missing: importing it fails with ModuleNotFoundError, importlib.util.find_spec gives None
    sys.modules[name] = None  # type: ignore[assignment]
for name, substitute in bundle_filter.SUBSTITUTES.items():  # as packaging/rthook_substitutes.py does
    sys.modules[name] = importlib.import_module(substitute)


def pytest_terminal_summary(terminalreporter: object) -> None:
    print(f"\nas in the frozen build: {len(HIDDEN)} torch sources hidden, {len(LEFT_OUT)} modules missing", file=sys.stderr)
