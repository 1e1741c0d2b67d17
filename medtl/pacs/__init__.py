"""Network DICOM: saved nodes, test connection, query, retrieve and send, by DIMSE (pynetdicom) or DICOMweb.

The GUI and the CLI call these functions; each takes a :class:`~medtl.pacs.nodes.Node` and
medtl's :class:`~medtl.pacs.nodes.LocalAE`, and long ones a progress callback and a cancel token:

- :func:`check_connection` -> :class:`~medtl.pacs.connection.ConnectionResult` (reachable, refused, ...)
- :func:`find` -> :class:`~medtl.pacs.query.Match` rows for a :class:`~medtl.pacs.query.Query`
- :func:`medtl.pacs.retrieve.retrieve` -> :class:`~medtl.pacs.retrieve.RetrieveResult`
- :func:`medtl.pacs.send.send` -> one :class:`~medtl.pacs.dimse.SendResult` per file
"""

from __future__ import annotations

from medtl.pacs import dimse, web
from medtl.pacs.connection import ConnectionResult
from medtl.pacs.nodes import LocalAE, Node
from medtl.pacs.query import Match, Query


def check_connection(node: Node, local: LocalAE) -> ConnectionResult:
    """C-ECHO a DIMSE node, or a one-study QIDO-RS search of a DICOMweb node; never raises for network trouble."""
    return web.echo(node) if node.is_web else dimse.echo(node, local)



def find(node: Node, local: LocalAE, query: Query) -> list[Match]:
    """The patients, studies or series on ``node`` matching ``query``."""
    return web.find(node, query) if node.is_web else dimse.find(node, local, query)
