"""Load-management configuration: zone tree validation, assignment rules, station registry form."""

from __future__ import annotations

import json
import math

import pytest

from custom_components.ev_charging_expert.evcore.allocation.model import (
    MinimumStandard,
    ShedPriority,
)
from custom_components.ev_charging_expert.evcore.allocation.phases import Wiring
from custom_components.ev_charging_expert.evcore.config import (
    MAX_CURRENT,
    ConnectorConfig,
    LoadSettings,
    StationConfig,
    ZoneConfig,
    ZoneMode,
    terminal_zones,
    validate_assignment,
    validate_zones,
)
from custom_components.ev_charging_expert.evcore.errors import ConfigError


def z(zone_id: str, max_current: float = 32.0, parent: str | None = None, **kw) -> ZoneConfig:
    return ZoneConfig(zone_id, kw.pop("name", zone_id.upper()), max_current, parent, **kw)


SITE = [z("a", 63), z("a1", 32, "a"), z("a2", 40, "a"), z("b", 32)]


# ---------------------------------------------------------------------- validate_zones
def test_valid_tree_is_returned_by_id():
    zones = validate_zones(SITE)
    assert list(zones) == ["a", "a1", "a2", "b"]
    assert zones["a1"].parent_id == "a"


def test_empty_site_is_valid():
    assert validate_zones([]) == {}


@pytest.mark.parametrize("other", ["Garage", "garage", "  GARAGE ", "GaRaGe"])
def test_names_are_unique_case_insensitively(other):
    with pytest.raises(ConfigError, match="two zones are called"):
        validate_zones([z("a", name="Garage"), z("b", name=other)])


@pytest.mark.parametrize("name", ["", "   "])
def test_a_zone_needs_a_name(name):
    with pytest.raises(ConfigError, match="needs a name"):
        validate_zones([z("a", name=name)])


def test_unknown_parent_refused():
    with pytest.raises(ConfigError, match="unknown parent"):
        validate_zones([z("a"), z("b", parent="nope")])


@pytest.mark.parametrize(
    "zones",
    [
        [z("a", parent="a")],
        [z("a", parent="b"), z("b", parent="a")],
        [z("a", parent="c"), z("b", parent="a"), z("c", parent="b")],
    ],
    ids=["self", "two", "three"],
)
def test_cycle_refused(zones):
    with pytest.raises(ConfigError, match="cycle"):
        validate_zones(zones)


def test_three_levels_allowed_four_refused():
    three = [z("r", 100), z("m", 80, "r"), z("l", 60, "m")]
    assert len(validate_zones(three)) == 3
    with pytest.raises(ConfigError, match="more than 3 levels"):
        validate_zones([*three, z("x", 40, "l")])


def test_sub_zone_may_equal_its_parent_but_not_exceed_it():
    assert validate_zones([z("a", 32), z("b", 32, "a")])
    with pytest.raises(ConfigError, match="exceeds its parent"):
        validate_zones([z("a", 32), z("b", 32.1, "a")])


def test_sub_zone_checked_against_every_ancestor_level():
    # b fits in a, c fits in b: fine; c bigger than b refused even though it fits in a.
    with pytest.raises(ConfigError, match=r"sub-zone 'C'.*exceeds its parent 'B'"):
        validate_zones([z("a", 100), z("b", 50, "a"), z("c", 60, "b")])


def test_degraded_setpoint_at_most_max():
    ok = z("a", 32, mode=ZoneMode.DYNAMIC, degraded_setpoint=32)
    assert validate_zones([ok])
    with pytest.raises(ConfigError, match="degraded setpoint"):
        validate_zones([z("a", 32, mode=ZoneMode.DYNAMIC, degraded_setpoint=32.5)])


@pytest.mark.parametrize(
    "value", [-1.0, -0.001, math.nan, math.inf, -math.inf, MAX_CURRENT + 1, 1e300]
)
@pytest.mark.parametrize("field", ["max_current", "degraded_setpoint"])
def test_currents_out_of_range_refused(field, value):
    kwargs = {"max_current": 32.0, "degraded_setpoint": 0.0} | {field: value}
    zone = ZoneConfig(
        "a", "A", kwargs["max_current"], degraded_setpoint=kwargs["degraded_setpoint"]
    )
    with pytest.raises(ConfigError, match="must be between 0 and"):
        validate_zones([zone])


@pytest.mark.parametrize("value", [0.0, 0.5, MAX_CURRENT])
def test_currents_at_range_bounds_accepted(value):
    assert validate_zones([z("a", value)])


# ---------------------------------------------------------------------- terminal_zones
def test_terminal_zones_are_those_without_sub_zones():
    assert terminal_zones(validate_zones(SITE)) == {"a1", "a2", "b"}
    assert terminal_zones({}) == set()
    assert terminal_zones(validate_zones([z("a")])) == {"a"}
    deep = validate_zones([z("r", 100), z("m", 80, "r"), z("l", 60, "m")])
    assert terminal_zones(deep) == {"l"}


# ---------------------------------------------------------------------- validate_assignment
def test_assignment_to_terminal_zone_or_none_accepted():
    zones = validate_zones(SITE)
    validate_assignment(
        zones,
        {
            "S1": StationConfig(zone_id="a1"),
            "S2": StationConfig(zone_id="b"),
            "S3": StationConfig(),  # unassigned
        },
    )


def test_station_in_zone_with_sub_zones_refused():
    zones = validate_zones(SITE)
    with pytest.raises(ConfigError, match="which has sub-zones"):
        validate_assignment(zones, {"S1": StationConfig(zone_id="a")})


def test_station_in_unknown_zone_refused():
    with pytest.raises(ConfigError, match="unknown zone"):
        validate_assignment(validate_zones(SITE), {"S1": StationConfig(zone_id="zz")})


@pytest.mark.parametrize("rating", [-1.0, math.nan, math.inf, MAX_CURRENT * 2])
def test_connector_rating_out_of_range_refused(rating):
    station = StationConfig(zone_id="b", connectors={1: ConnectorConfig(rating=rating)})
    with pytest.raises(ConfigError, match="rating"):
        validate_assignment(validate_zones(SITE), {"S1": station})


# ---------------------------------------------------------------------- StationConfig
def test_station_config_round_trip():
    config = StationConfig(
        zone_id="a1",
        vip=True,
        display_name="Parking 12",
        connectors={
            2: ConnectorConfig(Wiring.MONO2, rating=16.0, user_limit=10.5, paused=True),
            1: ConnectorConfig(Wiring.TRI231, rating=32.0),
        },
    )
    data = config.to_dict()
    assert list(data["connectors"]) == ["1", "2"]  # JSON keys, sorted
    assert data["connectors"]["2"] == {
        "wiring": "MONO2",
        "rating": 16.0,
        "user_limit": 10.5,
        "paused": True,
    }
    assert StationConfig.from_dict(data) == config
    # JSON-friendly: survives a json round trip too.
    assert StationConfig.from_dict(json.loads(json.dumps(data))) == config


@pytest.mark.parametrize("data", [None, {}])
def test_station_config_from_nothing_is_unassigned(data):
    assert StationConfig.from_dict(data) == StationConfig()
    assert StationConfig().zone_id is None


def test_station_config_tolerates_older_registries():
    config = StationConfig.from_dict({"zone_id": "b", "connectors": {"1": {}}})
    assert config == StationConfig(zone_id="b", connectors={1: ConnectorConfig()})
    assert config.connector(1).wiring is Wiring.TRI123
    assert config.connector(1).rating == 32.0


def test_connector_defaults_and_with_connector():
    config = StationConfig(zone_id="b")
    assert config.connector(3) == ConnectorConfig()
    changed = config.with_connector(2, user_limit=8.0)
    assert changed.connector(2).user_limit == 8.0
    assert config.connectors == {}  # the original is untouched
    again = changed.with_connector(2, paused=True)
    assert again.connector(2) == ConnectorConfig(user_limit=8.0, paused=True)


def test_zone_config_from_dict():
    zone = ZoneConfig.from_dict(
        "z9",
        {
            "name": "Car park",
            "max_current": "40",
            "parent_id": "",
            "mode": "dynamic",
            "degraded_setpoint": 10,
        },
    )
    assert zone == ZoneConfig("z9", "Car park", 40.0, None, ZoneMode.DYNAMIC, 10.0)
    assert ZoneConfig.from_dict("z", {"name": "n", "max_current": 1}).mode is ZoneMode.STATIC


def test_load_settings_to_allocation_settings():
    settings = LoadSettings(
        minimum_standard=MinimumStandard.EV_ZE_READY,
        shed_priority=ShedPriority.DURATION,
        reevaluation_period=600.0,
    )
    alloc = settings.allocation_settings()
    assert alloc.minimum_standard is MinimumStandard.EV_ZE_READY
    assert alloc.shed_priority is ShedPriority.DURATION
    assert alloc.reevaluation_period == 600.0
