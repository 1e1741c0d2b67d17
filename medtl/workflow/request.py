"""What every job request shares: validation on creation, with messages in the user's words.

A request (``TrainRequest``, ``PretrainRequest``, ``PredictRequest``, …) is a frozen dataclass
that checks its fields in ``__post_init__`` and raises :class:`InvalidRequest` naming the field.
The message speaks of the setting ("the time limit"), never of a CLI flag or a widget: the CLI
adds its flag with :func:`InvalidRequest.for_cli`, the app shows the message beside the field.
"""

from __future__ import annotations

from medtl.errors import InvalidRequest

__all__ = ["InvalidRequest", "check_choice", "check_epochs", "check_positive_minutes"]


def check_positive_minutes(field: str, minutes: float | None) -> None:
    """A time budget, when given, is a positive, finite number of minutes."""
    if minutes is not None and not (0 < minutes < float("inf")):
        raise InvalidRequest(field, f"the time limit must be a positive number of minutes, not {minutes:g}")


def check_epochs(field: str, epochs: int | None) -> None:
    """A number of epochs, when given, is at least one."""
    if epochs is not None and epochs < 1:
        raise InvalidRequest(field, f"the number of epochs must be at least 1, not {epochs}")


def check_choice(field: str, value: str, allowed: tuple[str, ...], what: str) -> None:
    """``value`` is one of ``allowed``; ``what`` names the setting in the message."""
    if value not in allowed:
        raise InvalidRequest(field, f"{what} must be one of {', '.join(allowed)}, not {value!r}")
