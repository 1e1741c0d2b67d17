"""Benchmark retrieving a 300-instance CT series from Orthanc: medtl's C-GET and WADO-RS against dcmtk's
`getscu` and dicomweb-client alone, in the same run.

Usage: python benchmarks/bench_pacs.py [--slices 300] [--size 512] [--repeat 3] [--only dimse|web]

Orthanc (with its DICOMweb plugin) listens on every address, so the benchmark runs in a private
network namespace: run outside one, it starts itself again under `unshare --net` (loopback only).
It writes a CT series of --slices slices of --size x --size (tests/dicomgen.py), loads it into a
fresh Orthanc (storage in /dev/shm when there is one) with dcmtk's storescu, then times, alternating,
median of --repeat runs after one warm-up each, every run into an empty folder on the same disk:
  getscu         `getscu -S ... -k QueryRetrieveLevel=SERIES` writing the files (-od), with TCP_NODELAY=1 in its
                 environment: the DIMSE reference (with dcmtk's default, Nagle's algorithm on, each instance
                 waited ~45 ms for a delayed ACK here: 9x slower)
  medtl C-GET    `medtl.pacs.retrieve` by C-GET: a series-level C-FIND for the instance count (none are
                 here yet, so no instance listing), the series-level C-GET, each instance written as
                 received and atomically (temp file, fsync, rename), and the scan of the study into a
                 fresh catalog
  dicomweb-client `DICOMwebClient.iter_series` (explicit VR little endian asked) and `save_as` per
                 instance: the DICOMweb reference
  medtl WADO-RS  `medtl.pacs.retrieve` from the DICOMweb node: a QIDO-RS series search for the count,
                 one streamed WADO-RS request whose parts are checked and stored byte for byte, the scan
and prints instances/s and the ratios medtl / reference (target <= 1.2), of wall time and of CPU time (user +
system: this process's for medtl and dicomweb-client, the finished child's for getscu; Orthanc's is not counted):
on a loaded machine the CPU each needs decides the wall time.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import pacs_servers  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("dimse", "web"), help="time only getscu and medtl's C-GET, or only the DICOMweb pair")
    args = parser.parse_args()
    missing = pacs_servers.missing_tools()
    if missing:
        print(f"cannot run: {missing}")
        return 1
    if not pacs_servers.in_private_network():
        refusal = pacs_servers.private_network_refusal()
        if refusal:
            print(f"cannot run: {refusal}")
            return 1
        env = {**os.environ, pacs_servers.MARKER: "1"}
        return subprocess.run(pacs_servers.private_network_command([sys.executable, *sys.argv]), env=env).returncode
    pacs_servers.loopback_up()
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(prefix="bench-pacs-") as work, tempfile.TemporaryDirectory(prefix="bench-orthanc-", dir=shm if shm.is_dir() else None) as data:
        return run(Path(work), Path(data), args)


def run(work: Path, data: Path, args: argparse.Namespace) -> int:
    import keyring
    import numpy as np
    import pydicom
    from dicomweb_client.api import DICOMwebClient

    from medtl.dicom.catalog import Catalog
    from medtl.pacs.nodes import LocalAE, Node, NodeBook
    from medtl.pacs.retrieve import RetrieveRequest, retrieve
    from medtl.pacs.storage import InstanceStore
    from medtl.pacs.web import RETRIEVE_MEDIA_TYPES
    from tests.dicomgen import SeriesSpec, write_series

    values = np.random.default_rng(0).integers(-1000, 2000, (args.slices, args.size, args.size)).astype(np.float64)
    files = write_series(work / "source", values, SeriesSpec())
    header = pydicom.dcmread(files[0], stop_before_pixels=True)
    study, series = str(header.StudyInstanceUID), str(header.SeriesInstanceUID)
    size_mb = sum(f.stat().st_size for f in files) / 1e6
    server = pacs_servers.Orthanc(data / "orthanc").start()
    try:
        started = time.perf_counter()
        server.store_with_storescu(files)
        print(f"{len(files)} instances, {size_mb:.0f} MB, loaded into Orthanc in {time.perf_counter() - started:.1f} s")
        keyring.set_keyring(pacs_servers.MemoryKeyring())
        book = NodeBook(path=work / "nodes.json", local=LocalAE())
        book.add(Node("orthanc", aet=server.aet, host="127.0.0.1", port=server.dicom_port, timeout=30))
        book.add(Node("web", url=server.dicomweb_url, auth="basic", username=pacs_servers.USER, timeout=30), pacs_servers.PASSWORD)
        outputs = iter(range(10**6))

        def fresh() -> Path:
            folder = work / f"out{next(outputs)}"
            folder.mkdir()
            return folder

        def getscu() -> int:
            out = fresh()
            subprocess.run(
                ["getscu", "-S", "-aet", "GETSCU", "-aec", server.aet, "127.0.0.1", str(server.dicom_port), "-od", str(out),
                 "-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={study}", "-k", f"SeriesInstanceUID={series}"],
                check=True, capture_output=True, env={**os.environ, "TCP_NODELAY": "1"},
            )  # fmt: skip
            return len(list(out.iterdir()))

        def medtl(node: str) -> Callable[[], int]:
            def fetch() -> int:
                out = fresh()
                result = retrieve(RetrieveRequest(book.get(node), series_uid=series), book, InstanceStore(out), Catalog(out / "catalog.sqlite"))
                return result.fetched

            return fetch

        def dicomweb_client() -> int:
            import requests

            out = fresh()
            session = requests.Session()
            session.auth = (pacs_servers.USER, pacs_servers.PASSWORD)
            client = DICOMwebClient(server.dicomweb_url, session=session)
            count = 0
            for dataset in client.iter_series(study, series, media_types=RETRIEVE_MEDIA_TYPES):
                dataset.save_as(out / f"{dataset.SOPInstanceUID}.dcm", enforce_file_format=True)
                count += 1
            return count

        load_before = os.getloadavg()[0]
        contenders = {"getscu": getscu, "medtl C-GET": medtl("orthanc"), "dicomweb-client": dicomweb_client, "medtl WADO-RS": medtl("web")}
        if args.only:
            contenders = dict(list(contenders.items())[:2] if args.only == "dimse" else list(contenders.items())[2:])
        times: dict[str, list[float]] = {name: [] for name in contenders}
        cpu: dict[str, list[float]] = {name: [] for name in contenders}
        for round_number in range(args.repeat + 1):
            for name, fetch in contenders.items():
                cpu_before, started = cpu_seconds(), time.perf_counter()
                count = fetch()
                seconds, cpu_used = time.perf_counter() - started, cpu_seconds() - cpu_before
                if count != len(files):
                    raise SystemExit(f"{name} fetched {count} of {len(files)} instances")
                if round_number:
                    times[name].append(seconds)
                    cpu[name].append(cpu_used)
            # The outputs stay until the end: on ext4, every file created soon after many were deleted makes the
            # inode allocator walk the recently deleted inodes (find_inode_bit, recently_deleted): a third of the
            # retrieve's CPU (getscu's as well as medtl's) when each round deleted the last one's 600 files.
        load = os.getloadavg()[0]
    finally:
        server.stop(kill=True)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"load average {load_before:.1f} before, {load:.1f} after; median of {args.repeat} (min)")
    print("| retrieve | s | instances/s | MB/s | ratio | CPU s (user + system) | CPU ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    pairs = {"getscu": None, "medtl C-GET": "getscu", "dicomweb-client": None, "medtl WADO-RS": "dicomweb-client"}
    for name, reference in pairs.items():
        if name not in median:
            continue
        ratio = f"{median[name] / median[reference]:.2f}" if reference else "1 (reference)"
        processor = statistics.median(cpu[name])
        cpu_ratio = f"{processor / statistics.median(cpu[reference]):.2f}" if reference else "1"
        print(
            f"| {name} | {median[name]:.2f} ({min(times[name]):.2f}) | {len(files) / median[name]:.0f} | {size_mb / median[name]:.0f} | {ratio}"
            f" | {processor:.2f} | {cpu_ratio} |"
        )
    return 0


def cpu_seconds() -> float:
    """User and system CPU seconds of this process (its threads: medtl's retrieve) and its finished children (getscu)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    sys.exit(main())
