"""`medtl pacs`: saved PACS/DICOMweb nodes, test connection, find, get (retrieve) and send."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from medtl.pacs.nodes import NodeBook
    from medtl.pacs.query import Match

FLAGS = {
    "name": "NAME", "aet": "--aet", "host": "--host", "port": "--port", "url": "--url", "username": "--user",
    "timeout": "--timeout", "auth": "--user/--token-stdin", "level": "--level", "date_from": "--date", "date_to": "--date",
    "study_uid": "--study", "series_uid": "--series", "move": "--move", "local_aet": "--aet", "local_port": "--port",
}  # fmt: skip
"""The flag that sets each setting, named in front of its errors."""
HELP = "query, retrieve from and send to a PACS or DICOMweb archive (saved nodes: `medtl pacs node add`)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    node = actions.add_parser("node", help="add, list or remove saved nodes; set medtl's own AE title and port")
    node_actions = node.add_subparsers(dest="node_action", metavar="ACTION", required=True)
    add = node_actions.add_parser("add", help="save a node: --aet, --host and --port (DIMSE), or --url (DICOMweb)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--aet", default="", help="the node's AE title")
    add.add_argument("--host", default="", help="the node's host name or address")
    add.add_argument("--port", type=int, default=0, help="the node's DICOM port")
    add.add_argument("--url", default="", help="a DICOMweb base URL (https://host/dicom-web)")
    add.add_argument("--user", default="", help="DICOMweb basic authentication: the user name (the password from --password-stdin)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input (kept in the OS keyring)")
    add.add_argument("--token-stdin", action="store_true", help="read a bearer token from standard input (kept in the OS keyring)")
    add.add_argument("--insecure", action="store_true", help="do not verify the server's TLS certificate (not recommended)")
    add.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds to wait for a connection or a reply (default 10)")
    node_actions.add_parser("list", help="list the saved nodes and medtl's own AE title and port")
    remove = node_actions.add_parser("remove", help="forget a saved node (and its secret in the keyring)")
    remove.add_argument("name", metavar="NAME")
    local = node_actions.add_parser("local", help="set medtl's own AE title and the port of its storage SCP (C-MOVE)")
    local.add_argument("--aet", help="medtl's AE title (default MEDTL)")
    local.add_argument("--port", type=int, help="the port medtl receives C-MOVE instances on (default 11112)")

    echo = actions.add_parser("echo", help="test the connection to a node (C-ECHO, or a QIDO-RS query)")
    echo.add_argument("name", metavar="NAME")

    find = actions.add_parser("find", help="search a node for patients, studies or series")
    find.add_argument("name", metavar="NAME")
    find.add_argument("--level", choices=("patient", "study", "series"), default="study")
    find.add_argument("--patient-id", default="", metavar="ID")
    find.add_argument("--patient-name", default="", metavar="PAT", help="wildcards * and ? allowed (DOE^J*)")
    find.add_argument("--modality", default="", metavar="M")
    find.add_argument("--date", default="", metavar="FROM-TO", help="YYYYMMDD-YYYYMMDD, YYYYMMDD-, -YYYYMMDD or one date")
    find.add_argument("--accession", default="", metavar="A")
    find.add_argument("--description", default="", metavar="TEXT", help="study (or, at series level, series) description")
    find.add_argument("--study", default="", metavar="UID", help="only this study (its series, at series level)")
    find.add_argument("--json", action="store_true", help="print one JSON array on stdout")

    get = actions.add_parser("get", help="retrieve a study or a series (resumes: what is here is not fetched again)")
    get.add_argument("name", metavar="NAME")
    which = get.add_mutually_exclusive_group(required=True)
    which.add_argument("--study", default="", metavar="UID")
    which.add_argument("--series", default="", metavar="UID")
    get.add_argument("--move", action="store_true", help="C-MOVE to medtl's own storage SCP instead of C-GET")
    get.add_argument("-o", "--output", type=Path, metavar="DIR", help="store under DIR (default: the user data folder)")

    send = actions.add_parser("send", help="send DICOM files (a SEG medtl wrote, a folder) to a node")
    send.add_argument("name", metavar="NAME")
    send.add_argument("paths", type=Path, nargs="+", metavar="FILE_OR_FOLDER")


def run(args: argparse.Namespace) -> int:
    from medtl.pacs.nodes import NodeBook

    book = NodeBook.load()
    if args.action == "node":
        return _node(args, book)
    node = book.get(args.name)
    if args.action == "echo":
        from medtl.pacs import check_connection

        result = check_connection(node, book.local)
        print(result)
        return 0 if result.ok else 1
    if args.action == "find":
        return _find(args, book)
    if args.action == "get":
        return _get(args, book)
    return _send(args, book)


def _node(args: argparse.Namespace, book: NodeBook) -> int:
    from medtl.pacs.nodes import Node

    if args.node_action == "list":
        print(f"medtl: AE title {book.local.aet}, storage port {book.local.port}")
        for node in sorted(book.nodes.values(), key=lambda n: n.name):
            extra = f"  {node.auth} authentication" + (f" as {node.username}" if node.username else "") if node.auth != "none" else ""
            tls = "  TLS not verified" if node.is_web and not node.verify_tls else ""
            print(f"{node.name}  {'DICOMweb' if node.is_web else 'DIMSE'}  {node.describe()}{extra}{tls}")
        if not book.nodes:
            print("No nodes saved: add one with `medtl pacs node add NAME --aet AET --host HOST --port PORT` or `--url URL`.")
        return 0
    if args.node_action == "remove":
        book.remove(args.name)
        book.save()
        print(f"removed node {args.name}")
        return 0
    if args.node_action == "local":
        book.with_local(args.aet, args.port)
        book.save()
        print(f"medtl: AE title {book.local.aet}, storage port {book.local.port}")
        return 0
    if args.password_stdin and args.token_stdin:
        from medtl.errors import InvalidRequest

        raise InvalidRequest("auth", "give either a password (with --user) or a token, not both")
    auth = "bearer" if args.token_stdin else "basic" if args.user or args.password_stdin else "none"
    node = Node(
        args.name, aet=args.aet, host=args.host, port=args.port, url=args.url, auth=auth, username=args.user,
        verify_tls=not args.insecure, timeout=args.timeout,
    )  # fmt: skip
    secret = sys.stdin.readline().rstrip("\r\n") if (args.password_stdin or args.token_stdin) else None
    book.add(node, secret)
    book.save()
    print(f"saved node {node.name}: {node.describe()}")
    return 0


def _find(args: argparse.Namespace, book: NodeBook) -> int:
    from medtl.pacs import find
    from medtl.pacs.query import Query

    start, end = Query.dates(args.date) if args.date else ("", "")
    query = Query(
        level=args.level, patient_name=args.patient_name, patient_id=args.patient_id, date_from=start, date_to=end,
        modality=args.modality, accession=args.accession, description=args.description, study_uid=args.study,
    )  # fmt: skip
    matches = find(book.get(args.name), book.local, query)
    if args.json:
        print(json.dumps([match.as_json() for match in matches]))
    else:
        print(as_text(matches, args.level))
    return 0


def as_text(matches: list[Match], level: str) -> str:
    """One line per match, columns for the level."""
    if not matches:
        return f"No {level} matches."
    lines = []
    for m in matches:
        if level == "patient":
            lines.append(f"{m.patient_id or '(no ID)'}  {m.patient_name}  {m.count if m.count is not None else '?'} study(ies)")
        elif level == "study":
            lines.append(f"{m.study_uid}  {m.study_date or '(no date)'}  {m.modalities or '?'}  {m.patient_id}  {m.study_description or '(no description)'}")
        else:
            count = f"{m.count} instance(s)" if m.count is not None else ""
            lines.append(f"{m.series_uid}  {m.modality or '?'}  #{m.series_number or '-'}  {m.series_description or '(no description)'}  {count}  study {m.study_uid}")
    return "\n".join(lines)


def _get(args: argparse.Namespace, book: NodeBook) -> int:
    from medtl.cli.scan_command import TerminalProgress
    from medtl.pacs.retrieve import RetrieveRequest, retrieve
    from medtl.pacs.storage import InstanceStore

    request = RetrieveRequest(book.get(args.name), study_uid=args.study, series_uid=args.series, move=args.move)
    progress = TerminalProgress() if sys.stderr.isatty() else None
    try:
        result = retrieve(request, book, InstanceStore(args.output) if args.output else None, progress=progress)
    finally:
        if progress is not None:
            progress.clear()
    print(
        f"{result.fetched} instance(s) retrieved, {result.already_here} already here"
        + (f", {result.not_received} not sent by the node" if result.not_received else ""),
        file=sys.stderr,
    )
    print(result.folder)
    return 0 if not result.not_received else 1


def _send(args: argparse.Namespace, book: NodeBook) -> int:
    from medtl.pacs.send import send

    results = send(book.get(args.name), book.local, args.paths)
    for result in results:
        print(result)
    failed = sum(not result.ok for result in results)
    print(f"{len(results) - failed} of {len(results)} file(s) stored", file=sys.stderr)
    return 0 if not failed else 1
