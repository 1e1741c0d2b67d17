"""A pytest plugin (``-p tests.bundled_torch_sources``): torch's sources readable only where the frozen build ships them.

The frozen build ships most torch modules as bytecode only (``packaging/bundle_filter.torch_sources_kept``). Loaded
before torch is imported, this makes every other torch module's source unreadable to ``inspect`` and ``linecache``,
as it is in the bundle, so that the tests run under it fail where torch would need a source the bundle leaves out.
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


def pytest_terminal_summary(terminalreporter: object) -> None:
    print(f"\nbundled torch sources only: {len(HIDDEN)} torch files asked for were hidden", file=sys.stderr)
