"""Killing a program that writes a project at random moments never corrupts it or loses a committed save.

A child process saves masks (each with its audit entry) and renames a label in a loop, printing a line
after each commit (a line cut short by the kill, as with PYTHONUNBUFFERED set, counts for nothing); it is killed with SIGKILL after a random delay, many times over. After each kill the
project opens (taking over the dead writer's lock), passes SQLite's integrity check, every mask it
names loads, and everything the child reported is there, with the same voxels.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medtl.project import Project, SeriesRecord

KILLS = 32
SERIES = "1.2.3.4.5"
SHAPE = (8, 24, 24)

WRITER = f"""
import hashlib, sys
import numpy as np
from medtl.data.sparse import Annotated
from medtl.dicom.volume import Volume
from medtl.project import Project

project = Project.open(sys.argv[1], take_over=True)
assert not project.read_only, project.notice
project.keep_versions = 10**6  # every version stays, so every reported save can be checked
grid = Volume(np.zeros({SHAPE}, np.int16), (0.8, 0.8, 2.0), (0.0, 0.0, 0.0))
print("ready", flush=True)
step = int(sys.argv[2])
while True:
    step += 1
    mask = np.zeros({SHAPE}, np.uint8)
    mask[step % {SHAPE[0]}, : step % {SHAPE[1]} + 1] = 1 + step % 2
    mask[0, 0, 0] = step % 251
    version = project.save_mask("{SERIES}", mask, grid, tool="brush", value=1 + step % 2, touched=Annotated().add(0, [step % {SHAPE[0]}]))
    print(f"saved {{version.version}} {{hashlib.sha256(mask.tobytes()).hexdigest()}}", flush=True)  # one write, whole or not at all
    if step % 3 == 0:
        project.rename_label(1, f"name {{step}}")
        print(f"renamed {{step}}", flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_killing_a_writer_at_random_moments_loses_nothing_committed(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    with Project.create(folder) as project:
        project.add_image(SeriesRecord(SERIES, "", None, tmp_path / "image.nii.gz", (), "CT", ""))
        project.define_label("name 0")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    randomness = random.Random(14)
    reported: dict[int, str] = {}
    renamed, checked, saves_seen = 0, 0, 0
    started = time.monotonic()
    for kill in range(KILLS):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(folder), str(kill * 100_000)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        time.sleep(randomness.uniform(0.25, 0.8))  # some kills land while it starts or opens the project
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate()
        assert child.returncode == -signal.SIGKILL, err.decode()
        for line in out.decode().split("\n")[:-1]:  # a line the kill cut short (no newline yet) reports nothing
            words = line.split()
            if words[0] == "saved":
                reported[int(words[1])] = words[2]
            elif words[0] == "renamed":
                renamed = int(words[1])
        with Project.open(folder, take_over=True) as project:
            assert not project.read_only, f"kill {kill}: {project.notice}"
            assert project.check() == [], f"kill {kill}"
            versions = {version.version: version for version in project.mask_versions(SERIES)}
            assert set(reported) <= set(versions), f"kill {kill}: reported saves are missing: {sorted(set(reported) - set(versions))}"
            for number in sorted(versions)[checked:]:  # every mask the database names loads (each checked once: files never change)
                array = project.load_mask(versions[number]).array
                assert array.shape == SHAPE
                if number in reported:
                    assert hashlib.sha256(array.tobytes()).hexdigest() == reported[number], f"kill {kill}: version {number} differs"
            checked = len(versions)
            brush = {entry.mask_version for entry in project.history(SERIES) if entry.tool == "brush"}
            assert set(versions) == brush, f"kill {kill}: a save without its audit entry, or the reverse"
            name = project.label(1).name
            assert int(name.split()[1]) >= renamed, f"kill {kill}: the rename to 'name {renamed}' was lost ({name!r})"
            saves_seen = len(versions)
    assert saves_seen >= KILLS, "the writer should have committed saves in most runs"
    assert time.monotonic() - started < 120
