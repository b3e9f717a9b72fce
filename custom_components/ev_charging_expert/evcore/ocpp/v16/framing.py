"""Limits on an OCPP-J frame before the `ocpp` library decodes it.

The library calls `json.loads` with no limits: an integer of 5,000 digits raises a ValueError
it does not expect, 20,000 levels of nesting a RecursionError, and `1e400` becomes an infinite
float that a handler turns into an internal error. `check_frame` decodes the frame once with
number hooks and checks its depth, so such a frame gets a CallError and the connection goes on.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ocpp.exceptions import FormationViolationError, OCPPError, TypeConstraintViolationError

from ...limits import MAX_JSON_DEPTH, MAX_NUMBER_CHARS


class FrameLimitError(Exception):
    """A frame breaks a limit: answer `error` to `unique_id` ("-1" when unknown)."""

    def __init__(self, error: OCPPError, unique_id: str) -> None:
        super().__init__(error)
        self.error = error
        self.unique_id = unique_id


class _Unusable:
    """Stands for a number the frame may not carry (kept to report it with its unique id)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _integer(text: str) -> int | _Unusable:
    return _Unusable(text) if len(text) > MAX_NUMBER_CHARS else int(text)


def _number(text: str) -> float | _Unusable:
    if len(text) > MAX_NUMBER_CHARS:
        return _Unusable(text)
    value = float(text)
    return value if math.isfinite(value) else _Unusable(text)


def decode_frame(raw: str | bytes) -> Any:
    """Decode a frame with the number limits; ValueError when it is not JSON at all.

    Raises FrameLimitError for a frame nested deeper than MAX_JSON_DEPTH, a number longer than
    MAX_NUMBER_CHARS, or one that is not finite (`1e400`, `NaN`, `Infinity`).
    """
    try:
        decoded = json.loads(raw, parse_int=_integer, parse_float=_number, parse_constant=_Unusable)
    except RecursionError:
        raise FrameLimitError(_too_deep(), "-1") from None
    _check(decoded)
    return decoded


def unique_id_of(decoded: Any) -> str:
    """The unique id of a decoded frame, or "-1" (OCPP 2.0.1's convention) when it has none."""
    if isinstance(decoded, list) and len(decoded) > 1 and isinstance(decoded[1], str):
        return decoded[1]
    return "-1"


def _too_deep() -> OCPPError:
    return FormationViolationError(
        details={"cause": f"Frame nested deeper than {MAX_JSON_DEPTH} levels"}
    )


def _check(decoded: Any) -> None:
    stack: list[tuple[Any, int]] = [(decoded, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, _Unusable):
            error = TypeConstraintViolationError(
                details={"cause": f"Number {value.text[:MAX_NUMBER_CHARS]!r} is not usable"}
            )
            raise FrameLimitError(error, unique_id_of(decoded))
        if isinstance(value, (list, dict)):
            if depth > MAX_JSON_DEPTH:
                raise FrameLimitError(_too_deep(), unique_id_of(decoded))
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
