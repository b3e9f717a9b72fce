"""Digital inputs (guide 3.10): contacts that cut every zone to a percentage of its max.

Each input has a name, a percentage (0-100 %) and is enabled or not; the HA glue maps it to an
entity (binary_sensor, input_boolean, switch: "on" is active) and reports its state with
`Rules.set_input_state`. While any enabled input is active, time-of-use is ignored and the
lowest active percentage applies to all zones; 0 % suspends every EV. An enabled input whose
state was never reported counts as active (when in doubt, less current), and so does an
entity that is unavailable or unknown (the glue reports it active and raises a repair).
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

MAX_INPUTS = 16
MAX_NAME = 40


@dataclass(frozen=True, slots=True)
class DigitalInput:
    """One input: its name (unique), the percentage it cuts zones to, and whether it counts."""

    name: str
    percent: float
    enabled: bool = True
    source: str | None = None
    """What drives it (an HA entity id); evcore does not read it."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "name": self.name,
            "percent": self.percent,
            "enabled": self.enabled,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DigitalInput:
        """Build from stored data (not validated: see `validate_inputs`)."""
        try:
            percent = float(data.get("percent", 0))
        except (TypeError, ValueError):
            raise ConfigError("percent must be a number") from None
        return cls(
            name=str(data.get("name") or "").strip(),
            percent=percent,
            enabled=bool(data.get("enabled", True)),
            source=data.get("source") or None,
        )


def validate_inputs(inputs: Iterable[DigitalInput]) -> tuple[DigitalInput, ...]:
    """Check the inputs; raise ConfigError naming the field."""
    result = tuple(inputs)
    if len(result) > MAX_INPUTS:
        raise ConfigError(f"inputs: at most {MAX_INPUTS} digital inputs, got {len(result)}")
    names: set[str] = set()
    for item in result:
        if not item.name:
            raise ConfigError("name: a digital input needs a name")
        if len(item.name) > MAX_NAME:
            raise ConfigError(f"name: at most {MAX_NAME} characters")
        if item.name.casefold() in names:
            raise ConfigError(f"name: two digital inputs are called {item.name!r}")
        names.add(item.name.casefold())
        if not (math.isfinite(item.percent) and 0 <= item.percent <= 100):  # noqa: PLR2004
            msg = f"percent: input {item.name!r} must be between 0 and 100 %, got {item.percent}"
            raise ConfigError(msg)
    return result
