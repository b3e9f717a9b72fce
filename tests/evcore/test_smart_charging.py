"""OCPP 1.6 Smart Charging profiles we install (evcore/ocpp/v16/smart_charging.py), checked against
the simulator's charge-point-side rules (tools/sim/profiles.py)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from ocpp.charge_point import remove_nones, snake_to_camel_case
from ocpp.messages import Call, _validate_payload
import pytest

from custom_components.ev_charging_expert.evcore.charger import LEASE_STACK_LEVEL, Capabilities
from custom_components.ev_charging_expert.evcore.ocpp.v16.smart_charging import (
    BASE_PROFILE_ID,
    BASE_STACK_LEVEL,
    LEASE_PROFILE_ID,
    base_profile,
    capabilities_from_configuration,
    lease_profile,
    round_limit,
)
from tools.sim.profiles import ProfileStore

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
AMPS = Capabilities(smart_charging=True, max_stack_level=8, accepts_amps=True, accepts_watts=True)
WATTS = Capabilities(smart_charging=True, max_stack_level=8, accepts_amps=False, accepts_watts=True)


@pytest.mark.parametrize(
    ("configuration", "expected"),
    [
        ({}, (False, None, True, False, False)),
        (
            {"SupportedFeatureProfiles": "Core, SmartCharging", "ChargeProfileMaxStackLevel": "3"},
            (True, 3, True, False, True),
        ),
        (
            {
                "SupportedFeatureProfiles": "Core,smartcharging",
                "ChargingScheduleAllowedChargingRateUnit": "Power",
            },
            (True, None, False, True, True),
        ),
        (
            {
                "SupportedFeatureProfiles": "SmartCharging",
                "ChargingScheduleAllowedChargingRateUnit": "Current, Power",
                "ChargeProfileMaxStackLevel": "x",
            },
            (True, None, True, True, True),
        ),
        (
            {"SupportedFeatureProfiles": "SmartCharging", "ChargeProfileMaxStackLevel": "0"},
            (True, 0, True, False, False),  # no room for a lease above the base
        ),
        (
            {
                "SupportedFeatureProfiles": "SmartCharging",
                "ChargingScheduleAllowedChargingRateUnit": "Lumens",
            },
            (True, None, False, False, False),
        ),
        (
            {"SupportedFeatureProfiles": "Core,FirmwareManagement"},
            (False, None, True, False, False),
        ),
    ],
)
def test_capabilities(configuration, expected):
    caps = capabilities_from_configuration(configuration)
    assert (*asdict(caps).values(), caps.controllable) == expected


@pytest.mark.parametrize(
    ("amps", "limit"),
    [(0, 0), (6, 6), (10.66666, 10.6), (10.69999, 10.6), (16.1, 16.1), (0.3, 0.3), (-1, 0)],
)
def test_round_limit_rounds_down(amps, limit):
    assert round_limit(amps) == pytest.approx(limit)
    assert round_limit(amps) <= max(amps, 0) + 1e-9


def test_base_profile_shape_and_effect():
    request = base_profile(0.0, capabilities=AMPS, now=T0)
    assert request.connector_id == 0
    profile = request.cs_charging_profiles
    assert profile["charging_profile_id"] == BASE_PROFILE_ID
    assert profile["stack_level"] == BASE_STACK_LEVEL == 0
    assert profile["charging_profile_purpose"] == "TxDefaultProfile"
    assert "valid_to" not in profile
    schedule = profile["charging_schedule"]
    assert schedule["charging_rate_unit"] == "A"
    assert schedule["charging_schedule_period"] == [{"start_period": 0, "limit": 0.0}]
    store = ProfileStore(2)
    assert store.set_profile(0, profile, T0) == "Accepted"
    assert store.limit_amps(1, T0 + timedelta(days=365)) == 0.0
    assert store.limit_amps(2, T0) == 0.0


def test_lease_over_base_then_expiry():
    store = ProfileStore(2)
    store.set_profile(0, base_profile(0.0, capabilities=AMPS, now=T0).cs_charging_profiles, T0)
    lease = lease_profile(2, 13.37, capabilities=AMPS, now=T0, valid_to=T0 + timedelta(seconds=180))
    assert lease.connector_id == 2
    profile = lease.cs_charging_profiles
    assert profile["charging_profile_id"] == LEASE_PROFILE_ID + 2
    assert profile["stack_level"] == LEASE_STACK_LEVEL == 1
    assert profile["valid_to"] == "2026-03-02T08:03:00Z"
    assert store.set_profile(2, profile, T0) == "Accepted"
    assert store.limit_amps(2, T0 + timedelta(seconds=179)) == pytest.approx(13.3)
    assert store.limit_amps(1, T0 + timedelta(seconds=179)) == 0.0
    assert store.limit_amps(2, T0 + timedelta(seconds=180)) == 0.0
    # Renewing replaces (same id): profiles never accumulate.
    for i in range(30):
        renewal = lease_profile(
            2,
            10,
            capabilities=AMPS,
            now=T0 + timedelta(seconds=60 * i),
            valid_to=T0 + timedelta(seconds=60 * i + 180),
        )
        assert store.set_profile(2, renewal.cs_charging_profiles, T0) == "Accepted"
    assert len(store.installed(2)) == 1


@pytest.mark.parametrize("phases", [1, 3])
def test_watts_for_a_charger_that_only_takes_watts(phases):
    lease = lease_profile(
        1, 16, capabilities=WATTS, now=T0, valid_to=T0 + timedelta(seconds=180), phases=phases
    )
    schedule = lease.cs_charging_profiles["charging_schedule"]
    assert schedule["charging_rate_unit"] == "W"
    period = schedule["charging_schedule_period"][0]
    assert period == {"start_period": 0, "limit": 16 * 230 * phases, "number_phases": phases}
    store = ProfileStore(1)
    store.set_profile(1, lease.cs_charging_profiles, T0)
    # Per phase, never more than the amps asked for.
    assert store.limit_amps(1, T0) == pytest.approx(16.0)
    base = base_profile(0, capabilities=WATTS, now=T0).cs_charging_profiles
    assert base["charging_schedule"]["charging_rate_unit"] == "W"


@pytest.mark.parametrize("accepts_amps", [True, False])
@pytest.mark.parametrize("amps", [0.0, 6.0, 13.37, 32.0])
def test_profiles_we_build_match_the_ocpp_schema(accepts_amps: bool, amps: float) -> None:
    # Load management sends them without the library's per-message schema check (hot path),
    # so every shape we can build is checked here instead.
    capabilities = Capabilities(
        smart_charging=True, max_stack_level=8, accepts_amps=accepts_amps, accepts_watts=True
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for payload in (
        base_profile(amps, capabilities=capabilities, now=now),
        lease_profile(2, amps, capabilities=capabilities, now=now, valid_to=now, phases=3),
    ):
        body = remove_nones(snake_to_camel_case(asdict(payload)))
        _validate_payload(Call("1", "SetChargingProfile", body), "1.6")
