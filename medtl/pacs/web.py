"""DICOMweb with dicomweb-client: QIDO-RS search, WADO-RS retrieve, STOW-RS store.

The password or token comes from the keyring; TLS certificates are verified unless the node says
otherwise; every request has the node's timeout. HTTP and network failures become a
:class:`PacsError` that says what happened (refused, timed out, authentication failed, ...).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from medtl.pacs import multipart
from medtl.pacs.connection import ConnectionResult, Outcome, PacsError, Stopwatch
from medtl.pacs.dimse import SendResult
from medtl.pacs.nodes import Node, get_secret
from medtl.pacs.query import Match, Query, count_from, match_from, patients_of
from medtl.pacs.storage import instance_uids
from medtl.progress import CancelToken

# WADO-RS asks for instances in this transfer syntax (explicit VR little endian): every client decodes it.
RETRIEVE_MEDIA_TYPES = (("application/dicom", "1.2.840.10008.1.2.1"),)
_ACCEPT = "; ".join(("multipart/related", f'type="{RETRIEVE_MEDIA_TYPES[0][0]}"', f"transfer-syntax={RETRIEVE_MEDIA_TYPES[0][1]}"))
_CHUNK = 1 << 20  # bytes read from the reply at a time
_STUDY_FIELDS = ["PatientName", "PatientID", "StudyDate", "StudyDescription", "AccessionNumber", "ModalitiesInStudy", "NumberOfStudyRelatedSeries"]
_SERIES_FIELDS = ["SeriesDescription", "SeriesNumber", "Modality", "NumberOfSeriesRelatedInstances"]


def client(node: Node) -> Any:
    """A ``DICOMwebClient`` for ``node`` with its credentials, TLS verification and timeout."""
    from dicomweb_client.api import DICOMwebClient

    web = DICOMwebClient(node.url, session=_session(node), timeout=(node.timeout, node.timeout))
    web.set_http_retry_params(retry=False)  # its default, 5 tries with growing waits, hides a dead node for a minute
    return web


def _session(node: Node) -> Any:
    """A ``requests`` session with ``node``'s credentials and TLS verification."""
    session = _literal_wildcards()()
    session.verify = node.verify_tls
    if node.auth != "none":
        secret = get_secret(node)
        if not secret:
            raise PacsError(node, Outcome.UNAUTHORIZED, "no password or token in the keyring: add the node again with it")
        if node.auth == "basic":
            session.auth = (node.username, secret)
        else:
            session.headers["Authorization"] = f"Bearer {secret}"
    return session


def _literal_wildcards() -> type:
    import requests

    class LiteralWildcards(requests.Session):
        """Sends ``*`` in a query string as it is: Orthanc (1.10) matches a percent-encoded ``%2A`` literally."""

        def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
            prepared = super().prepare_request(request)
            base, mark, query = (prepared.url or "").partition("?")
            if mark:
                prepared.url = f"{base}?{query.replace('%2A', '*')}"
            return prepared

    return LiteralWildcards


@contextlib.contextmanager
def explained(node: Node, doing: str) -> Iterator[None]:
    """Turn what requests raises into a :class:`PacsError` naming the node and the trouble."""
    import requests

    try:
        yield
    except requests.exceptions.SSLError as error:
        raise PacsError(node, Outcome.FAILED, f"the TLS certificate could not be verified ({_first_line(error)})", doing) from error
    except requests.exceptions.Timeout as error:
        raise PacsError(node, Outcome.TIMED_OUT, f"no answer in {node.timeout:g} s", doing) from error
    except requests.exceptions.ConnectionError as error:
        text = str(error)
        if "refused" in text.lower():
            raise PacsError(node, Outcome.REFUSED, "nothing listens at that address", doing) from error
        if "Name or service not known" in text or "NameResolutionError" in text:
            raise PacsError(node, Outcome.UNREACHABLE, "unknown host", doing) from error
        raise PacsError(node, Outcome.FAILED, f"the connection failed or was lost ({_first_line(error)})", doing) from error
    except requests.exceptions.HTTPError as error:
        code = error.response.status_code if error.response is not None else 0
        if code in (401, 403):
            raise PacsError(node, Outcome.UNAUTHORIZED, f"HTTP {code}: check the user name and password or token", doing) from error
        raise PacsError(node, Outcome.FAILED, f"HTTP {code or '?'}", doing) from error
    except requests.exceptions.RequestException as error:  # a reply cut off mid-stream, a malformed one
        raise PacsError(node, Outcome.FAILED, f"the reply was cut off or malformed ({_first_line(error)})", doing) from error


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


def echo(node: Node) -> ConnectionResult:
    """A one-study QIDO-RS search: reachable (and authorised), or why not."""
    watch = Stopwatch()
    try:
        with explained(node, "QIDO-RS"):
            client(node).search_for_studies(limit=1)
    except PacsError as error:
        return error.as_result(watch.seconds)
    return ConnectionResult(node.name, Outcome.REACHABLE, f"QIDO-RS in {watch.seconds * 1000:.0f} ms", watch.seconds)


def _datasets(answers: list[dict]) -> list[Any]:
    from pydicom.dataset import Dataset

    return [Dataset.from_json(answer) for answer in answers]


def _filters(keys: dict[str, str]) -> dict[str, str]:
    return {keyword: value for keyword, value in keys.items() if value}


def find(node: Node, query: Query) -> list[Match]:
    """The patients (grouped from studies: QIDO-RS has no patient level), studies or series matching ``query``."""
    web = client(node)
    study_keys = {
        "PatientName": query.patient_name, "PatientID": query.patient_id, "StudyInstanceUID": query.study_uid,
        "StudyDate": query.date_range, "AccessionNumber": query.accession, "ModalitiesInStudy": query.modality,
        "StudyDescription": query.description if query.level != "series" else "",
    }  # fmt: skip
    with explained(node, "QIDO-RS"):
        answers = web.search_for_studies(search_filters=_filters(study_keys), fields=_STUDY_FIELDS)
        studies = [match_from(answer, "study") for answer in _datasets(answers)]
        if query.level == "patient":
            return patients_of(studies)
        if query.level == "study":
            return studies
        series_keys = {"Modality": query.modality, "SeriesDescription": query.description}
        rows = []
        for study in studies:
            found = web.search_for_series(study.study_uid, search_filters=_filters(series_keys), fields=_SERIES_FIELDS)
            for answer in _datasets(found):
                row = match_from(answer, "series").as_json()
                shared = ("patient_id", "patient_name", "study_uid", "study_date", "study_description", "accession")
                rows.append(Match(**{**row, **{key: getattr(study, key) for key in shared}}))
        return rows


def _uids(answers: list[dict], keyword: str) -> list[str]:
    """One UID attribute of each DICOM JSON answer (read directly: ``Dataset.from_json`` costs ms an answer)."""
    from pydicom.datadict import tag_for_keyword

    tag = f"{tag_for_keyword(keyword):08X}"
    return [str(answer[tag]["Value"][0]) for answer in answers if answer.get(tag, {}).get("Value")]


def series_of(node: Node, study_uid: str) -> list[str]:
    with explained(node, "QIDO-RS"):
        return _uids(client(node).search_for_series(study_uid, fields=["SeriesInstanceUID"]), "SeriesInstanceUID")


def count_of(node: Node, study_uid: str, series_uid: str) -> tuple[str, int | None]:
    """The study UID (found when ``study_uid`` is "") and how many instances a series holds (None: not said)."""
    with explained(node, "QIDO-RS"):
        answers = client(node).search_for_series(
            study_uid or None, search_filters={"SeriesInstanceUID": series_uid}, fields=["StudyInstanceUID", "NumberOfSeriesRelatedInstances"]
        )
    found = _uids(answers, "StudyInstanceUID")
    if not found:
        raise PacsError(node, Outcome.FAILED, f"no series {series_uid} there", "QIDO-RS")
    count = answers[0].get("00201209", {}).get("Value") or [None]
    return study_uid or found[0], count_from(count[0])


def instances_of(node: Node, study_uid: str, series_uid: str) -> tuple[str, list[str]]:
    """The study UID (found when ``study_uid`` is "") and the SOP Instance UIDs of a series: one QIDO-RS search."""
    with explained(node, "QIDO-RS"):
        answers = client(node).search_for_instances(
            study_uid or None, search_filters={"SeriesInstanceUID": series_uid}, fields=["StudyInstanceUID", "SOPInstanceUID"]
        )
    sop_uids = _uids(answers, "SOPInstanceUID")
    if not sop_uids:
        raise PacsError(node, Outcome.FAILED, f"no instances of the series {series_uid} there", "QIDO-RS")
    return study_uid or _uids(answers, "StudyInstanceUID")[0], sop_uids


def retrieve(
    node: Node, study_uid: str, series_uid: str, sop_uids: list[str] | None, on_instance: Callable[[str, str, str, bytes], None], cancel: CancelToken | None
) -> None:
    """WADO-RS a whole series (``sop_uids`` None, one streamed request) or the listed instances (one request each).

    Each instance is handed to ``on_instance(study_uid, series_uid, sop_uid, data)`` as the DICOM file
    the node sent, byte for byte, once it has arrived whole and its header has been read: a part that
    is not a DICOM file of this series raises :class:`PacsError` and nothing of it is handed on.
    """
    session = _session(node)
    base = f"{node.url.rstrip('/')}/studies/{study_uid}/series/{series_uid}"
    asks = [(base, None)] if sop_uids is None else [(f"{base}/instances/{uid}", uid) for uid in sop_uids]
    number = 0
    with explained(node, "WADO-RS"):
        for url, wanted in asks:
            if cancel is not None:
                cancel.raise_if_cancelled()
            for data in _instances(node, session, url):
                if cancel is not None:
                    cancel.raise_if_cancelled()
                number += 1
                study, series, sop = _checked(node, data, number)
                if (study, series) != (study_uid, series_uid) or wanted not in (None, sop):
                    raise PacsError(node, Outcome.FAILED, f"part {number} of the reply is another instance than the one asked for ({sop})", "WADO-RS")
                on_instance(study, series, sop, data)


def _instances(node: Node, session: Any, url: str) -> Iterator[bytes]:
    """The DICOM files of a WADO-RS reply, each once it has arrived whole."""
    with session.get(url, headers={"Accept": _ACCEPT}, timeout=(node.timeout, node.timeout), stream=True) as response:
        response.raise_for_status()
        content_type = response.headers.get("Content-Type", "")
        if content_type.lower().startswith("application/dicom"):  # one instance sent bare (not multipart), as some servers do
            yield response.content
            return
        boundary = multipart.boundary_of(content_type) if content_type.lower().startswith("multipart/related") else None
        if boundary is None:
            raise PacsError(node, Outcome.FAILED, f"the reply is {content_type or 'untyped'}, not multipart/related with a boundary", "WADO-RS")
        try:
            yield from multipart.parts(response.iter_content(_CHUNK), boundary)
        except multipart.MultipartError as error:
            raise PacsError(node, Outcome.FAILED, f"the reply was cut off or malformed ({error})", "WADO-RS") from error


def _checked(node: Node, data: bytes, number: int) -> tuple[str, str, str]:
    try:
        return instance_uids(data)
    except ValueError as error:
        raise PacsError(node, Outcome.FAILED, f"part {number} of the reply is not a DICOM instance: {error}", "WADO-RS") from error


def store(node: Node, datasets: list[tuple[Path, Any]], on_result: Callable[[SendResult], None], cancel: CancelToken | None = None) -> None:
    """STOW-RS each file on its own (one result per instance, as the node answers it).

    A file the node refuses (HTTP 4xx other than 401/403) is a failed result; the others stop the sending.
    """
    web = client(node)
    for path, dataset in datasets:
        if cancel is not None:
            cancel.raise_if_cancelled()
        uid = str(dataset.SOPInstanceUID)
        try:
            with explained(node, "STOW-RS"):
                answer = web.store_instances([dataset])
        except PacsError as error:
            if error.outcome is not Outcome.FAILED or not error.detail.startswith("HTTP 4"):
                raise
            on_result(SendResult(path, uid, False, f"refused ({error.detail})"))
            continue
        on_result(_stow_result(path, uid, answer))


def _stow_result(path: Path, uid: str, answer: Any) -> SendResult:
    for item in answer.get("FailedSOPSequence", []) or []:
        if str(item.get("ReferencedSOPInstanceUID", "")) == uid:
            return SendResult(path, uid, False, f"refused (failure reason 0x{int(item.get('FailureReason', 0)):04X})")
    for item in answer.get("ReferencedSOPSequence", []) or []:
        if str(item.get("ReferencedSOPInstanceUID", "")) == uid:
            return SendResult(path, uid, True, "stored")
    return SendResult(path, uid, False, "the node's answer does not mention it")
