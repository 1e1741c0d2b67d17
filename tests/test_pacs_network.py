"""Runs the PACS tests that need real peers (Orthanc, dcmtk) in a private network namespace.

Orthanc listens on every address; inside ``unshare --net`` only this test run can reach it. This
test starts pytest again on those modules in a new namespace (loopback only) and passes when
every one of their tests passes there; it skips, saying why, where the tools or the namespace are missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import pacs_servers

MODULES = ("tests/test_pacs_dimse.py", "tests/test_pacs_web.py", "tests/test_pacs_cli.py", "tests/test_pacs_dialog.py", "tests/test_ui_send_to_pacs.py")
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(pacs_servers.in_private_network(), reason="already inside the private network namespace")
def test_pacs_against_real_peers_in_a_private_network() -> None:
    missing = pacs_servers.missing_tools()
    if missing:
        pytest.skip(missing)
    refusal = pacs_servers.private_network_refusal()
    if refusal:
        pytest.skip(refusal)
    env = {**os.environ, pacs_servers.MARKER: "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = pacs_servers.private_network_command([sys.executable, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", *MODULES])
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, f"inside the private network: {summary}\n{done.stdout[-8000:]}\n{done.stderr[-2000:]}"
    assert "passed" in summary and "skipped" not in summary, done.stdout[-4000:]
