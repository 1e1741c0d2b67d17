"""A streaming reader of ``multipart/related`` bodies (RFC 2046), as WADO-RS sends instances.

Each part is yielded as its body bytes, exactly as received, once its closing delimiter has
arrived: a body cut off mid-part yields nothing of that part and raises :class:`MultipartError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class MultipartError(ValueError):
    """The body is not a complete multipart message."""


def boundary_of(content_type: str) -> bytes | None:
    """The ``boundary`` parameter of a Content-Type header value, or None when there is none."""
    _, *parameters = content_type.split(";")
    for parameter in parameters:
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "boundary" and value.strip().strip('"'):
            return value.strip().strip('"').encode("latin-1")
    return None


def parts(chunks: Iterable[bytes], boundary: bytes) -> Iterator[bytes]:
    """The bodies of the parts of a multipart message arriving as ``chunks`` (headers dropped)."""
    delimiter = b"\r\n--" + boundary
    buffer = bytearray(b"\r\n")  # the first delimiter may open the body without a line break before it
    in_part = False  # False: the buffer is before the first delimiter, or begins with a delimiter
    searched = 0
    for chunk in chunks:
        buffer += chunk
        while True:
            if in_part or not buffer.startswith(delimiter):
                found = buffer.find(delimiter, searched)
                if found < 0:
                    searched = max(0, len(buffer) - len(delimiter) + 1)
                    break
                if in_part:
                    yield _body(bytes(buffer[:found]))
                del buffer[:found]
                in_part, searched = False, 0
            after = len(delimiter)
            if buffer[after : after + 2] == b"--":
                return
            line_end = buffer.find(b"\r\n", after)
            if line_end < 0:
                break  # the rest of the delimiter line is still to come
            del buffer[: line_end + 2]
            in_part = True
    raise MultipartError("the message ended before its closing boundary (cut off)")


def _body(part: bytes) -> bytes:
    """The body of a part: what follows its header lines and the blank line after them."""
    if part.startswith(b"\r\n"):  # no headers
        return part[2:]
    end = part.find(b"\r\n\r\n")
    if end < 0:
        raise MultipartError("a part has no blank line after its headers")
    return part[end + 4 :]
