"""Normalise OCPP 1.6 MeterValues: every measurand, phase and context; Wh and W units."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...clock import parse_timestamp
from ...model import Measurement

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

DEFAULT_MEASURAND = "Energy.Active.Import.Register"

# (factor, normalised unit) per unit the charger may send.
_UNITS: dict[str, tuple[float, str]] = {
    "Wh": (1.0, "Wh"),
    "kWh": (1000.0, "Wh"),
    "varh": (1.0, "varh"),
    "kvarh": (1000.0, "varh"),
    "W": (1.0, "W"),
    "kW": (1000.0, "W"),
    "VA": (1.0, "VA"),
    "kVA": (1000.0, "VA"),
    "var": (1.0, "var"),
    "kvar": (1000.0, "var"),
    "A": (1.0, "A"),
    "V": (1.0, "V"),
    "Percent": (1.0, "%"),
    "Celsius": (1.0, "°C"),
    "Celcius": (1.0, "°C"),  # OCPP 1.6's own schema spells it so, and chargers follow it
    "Hertz": (1.0, "Hz"),
}

# OCPP's default unit is "Wh" whatever the measurand; chargers that omit the unit on a current,
# a power or a reactive energy mean that measurand's natural unit, so that is what we assume.
_NATURAL_UNIT = {
    "Current": "A",
    "Voltage": "V",
    "Power.Active": "W",
    "Power.Offered": "W",
    "Power.Reactive": "var",
    "Energy.Reactive": "varh",
    "Power.Factor": "",
    "SoC": "Percent",
    "Temperature": "Celsius",
    "Frequency": "Hertz",
    "RPM": "",
}

# "L1-N" (voltage to neutral) is reported as L1; line-to-line values ("L1-L2") keep their name.
_PHASE_LINE = {"L1": "L1", "L2": "L2", "L3": "L3", "L1-N": "L1", "L2-N": "L2", "L3-N": "L3"}


def _unit_for(measurand: str, unit: str | None) -> str:
    if unit:
        return unit
    for prefix, natural in _NATURAL_UNIT.items():
        if measurand.startswith(prefix):
            return natural
    return "Wh"


def _convert(value: float, unit: str) -> tuple[float, str]:
    if unit == "Fahrenheit":
        return (value - 32.0) * 5.0 / 9.0, "°C"
    if unit == "K":
        return value - 273.15, "°C"
    factor, normalised = _UNITS.get(unit, (1.0, unit))
    return value * factor, normalised


def parse_meter_values(
    meter_value: Iterable[dict[str, Any]], received_at: datetime
) -> list[Measurement]:
    """Turn the `meterValue` list of a MeterValues or StopTransaction into measurements.

    Signed values and values that are not numbers are skipped (they cannot be shown as a
    number); everything else is kept with its phase, context and location. Ranges are the
    site's to check (`limits.MEASURAND_RANGES`), in the normalised units.
    """
    out: list[Measurement] = []
    for entry in meter_value:
        timestamp = parse_timestamp(entry.get("timestamp"), received_at)
        for sample in entry.get("sampled_value", ()):
            if sample.get("format") == "SignedData":
                continue
            try:
                raw = float(sample["value"])
            except (KeyError, TypeError, ValueError):
                continue
            measurand = sample.get("measurand") or DEFAULT_MEASURAND
            value, unit = _convert(raw, _unit_for(measurand, sample.get("unit")))
            phase = sample.get("phase")
            out.append(
                Measurement(
                    measurand=measurand,
                    value=value,
                    unit=unit,
                    phase=_PHASE_LINE.get(phase, phase) if phase else None,
                    context=sample.get("context") or "Sample.Periodic",
                    location=sample.get("location") or "Outlet",
                    timestamp=timestamp,
                )
            )
    return out
