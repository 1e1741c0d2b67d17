"""Foreign error messages (pydicom, decoder plugins) made fit for a one-line reason."""

from __future__ import annotations

MAX_LENGTH = 300


def one_line(text: str) -> str:
    """``text`` on one line (its lines joined by "; "), cut to ``MAX_LENGTH`` characters."""
    joined = "; ".join(line.strip() for line in text.splitlines() if line.strip())
    return joined if len(joined) <= MAX_LENGTH else joined[: MAX_LENGTH - 3] + "..."


def describe(error: BaseException) -> str:
    """``ValueError: what it says``, on one line."""
    return f"{type(error).__name__}: {one_line(str(error))}"
