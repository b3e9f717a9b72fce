"""OCPP 1.6 Smart Charging: what a charger can do, and the profiles we install on it.

Two layers of profiles, both TxDefaultProfile so they also govern a session that starts later:

- the **base** profile: connector 0, stack level 0, no end. It holds the station's degraded
  current and is what a charger obeys when it stops hearing from us;
- a **lease** per connector: stack level 1, valid for a limited time and renewed. It holds the
  setpoint. If Home Assistant stops, leases expire and the charger falls back to the base.

Profile ids are stable (replace, never accumulate).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ocpp.v16 import call

from ...charger import LEASE_STACK_LEVEL, Capabilities

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

BASE_PROFILE_ID = 9000
LEASE_PROFILE_ID = 9100  # + connector id
BASE_STACK_LEVEL = 0
# OCPP's schema wants limits in multiples of 0.1.
_LIMIT_STEP = 0.1


def capabilities_from_configuration(configuration: Mapping[str, str]) -> Capabilities:
    """Read SupportedFeatureProfiles, ChargeProfileMaxStackLevel and the rate units."""
    profiles = {
        p.strip().casefold() for p in configuration.get("SupportedFeatureProfiles", "").split(",")
    }
    try:
        max_stack: int | None = int(configuration["ChargeProfileMaxStackLevel"])
    except (KeyError, ValueError):
        max_stack = None
    units = {
        u.strip().casefold()
        for u in configuration.get("ChargingScheduleAllowedChargingRateUnit", "").split(",")
        if u.strip()
    }
    return Capabilities(
        smart_charging="smartcharging" in profiles,
        max_stack_level=max_stack,
        # A charger that does not say which units it takes gets amps, OCPP's usual unit.
        accepts_amps=not units or "current" in units or "a" in units,
        accepts_watts="power" in units or "w" in units,
    )


def round_limit(amps: float) -> float:
    """Round a limit *down* to OCPP's 0.1 step (never up: less current when in doubt)."""
    return max(math.floor(amps / _LIMIT_STEP + 1e-9) * _LIMIT_STEP, 0.0)


def _schedule(
    amps: float, capabilities: Capabilities, phases: int, nominal_voltage: float
) -> dict[str, Any]:
    if capabilities.accepts_amps:
        unit, limit = "A", round_limit(amps)
    else:
        # Watts for a charger that only takes W. `phases` is the number of phases the EV is
        # known to draw on (1 until meter values say more), so a single-phase EV can never
        # draw the three-phase equivalent on one phase.
        unit, limit = "W", round_limit(amps * nominal_voltage * phases)
    period: dict[str, Any] = {"start_period": 0, "limit": round(limit, 1)}
    if unit == "W":
        # Only with watts: with amps the limit is per phase already, and numberPhases would
        # ask some chargers to switch the EV to fewer phases.
        period["number_phases"] = phases
    return {"charging_rate_unit": unit, "charging_schedule_period": [period]}


def _ocpp_time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def base_profile(
    amps: float,
    *,
    capabilities: Capabilities,
    now: datetime,
    nominal_voltage: float = 230.0,
) -> call.SetChargingProfile:
    """The fallback profile for every connector of the station."""
    return call.SetChargingProfile(
        connector_id=0,
        cs_charging_profiles={
            "charging_profile_id": BASE_PROFILE_ID,
            "stack_level": BASE_STACK_LEVEL,
            "charging_profile_purpose": "TxDefaultProfile",
            "charging_profile_kind": "Absolute",
            "charging_schedule": {
                "start_schedule": _ocpp_time(now),
                **_schedule(amps, capabilities, 1, nominal_voltage),
            },
        },
    )


def lease_profile(
    connector_id: int,
    amps: float,
    *,
    capabilities: Capabilities,
    now: datetime,
    valid_to: datetime,
    phases: int = 1,
    nominal_voltage: float = 230.0,
) -> call.SetChargingProfile:
    """A connector's setpoint, valid until `valid_to`."""
    return call.SetChargingProfile(
        connector_id=connector_id,
        cs_charging_profiles={
            "charging_profile_id": LEASE_PROFILE_ID + connector_id,
            "stack_level": LEASE_STACK_LEVEL,
            "charging_profile_purpose": "TxDefaultProfile",
            "charging_profile_kind": "Absolute",
            "valid_from": _ocpp_time(now),
            "valid_to": _ocpp_time(valid_to),
            "charging_schedule": {
                "start_schedule": _ocpp_time(now),
                **_schedule(amps, capabilities, phases, nominal_voltage),
            },
        },
    )
