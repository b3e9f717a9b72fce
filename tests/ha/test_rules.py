"""Operating rules in HA: TOU periods and digital inputs (subentries), remote setpoints
(options, services, number entities), the zone "limited by" and effective-limit sensors, the
site sensors, bus events, repairs, diagnostics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigSubentryDataWithId
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr, issue_registry as ir
import pytest

from custom_components.ev_charging_expert.const import (
    CONF_REMOTE_ENABLED,
    CONF_REMOTE_MIN_PERIOD,
    DOMAIN,
    EVENT_TOU_PERIOD_CHANGED,
    SUBENTRY_DIGITAL_INPUT,
    SUBENTRY_TOU_PERIOD,
    zone_device_id,
)

from .conftest import entity_id, start_subentry_flow, submit, zone_subentry

if TYPE_CHECKING:
    from homeassistant.core import Event, HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry

    from custom_components.ev_charging_expert.coordinator import EvChargingCoordinator
    from custom_components.ev_charging_expert.evcore.clock import ManualClock

RELAY = "input_boolean.grid_relay"


def _period(
    sid: str, name: str, percent: float, slots: str, **extra: Any
) -> ConfigSubentryDataWithId:
    return ConfigSubentryDataWithId(
        subentry_id=sid,
        subentry_type=SUBENTRY_TOU_PERIOD,
        title=name,
        unique_id=None,
        data={"name": name, "percent": percent, "slots": slots, "excluded_zones": [], **extra},
    )


def _input(sid: str, name: str, entity: str, percent: float) -> ConfigSubentryDataWithId:
    return ConfigSubentryDataWithId(
        subentry_id=sid,
        subentry_type=SUBENTRY_DIGITAL_INPUT,
        title=name,
        unique_id=None,
        data={"name": name, "entity_id": entity, "percent": percent, "enabled": True},
    )


@pytest.fixture
def zone_subentries() -> list[ConfigSubentryDataWithId]:
    """Two zones, a period from 02:30 to 03:00 local (10:30 UTC, US/Pacific), an input."""
    return [
        zone_subentry("main", "Main", 100.0),
        zone_subentry("side", "Side", 40.0),
        _period("p1", "peak", 50, "Daily 02:30-03:00", excluded_zones=["side"]),
        _input("i1", "grid relay", RELAY, 20),
    ]


@pytest.fixture(autouse=True)
def _on_the_manual_clock(clock: ManualClock) -> ManualClock:
    """Every test here runs on the manual clock: which period is active depends on the time
    of day, and a test must not depend on when it runs."""
    return clock


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """Remote setpoints on, from HA, with a minimum period."""
    return {CONF_REMOTE_ENABLED: True, CONF_REMOTE_MIN_PERIOD: 60}


async def _settle(hass: HomeAssistant) -> None:
    await hass.async_block_till_done()
    await hass.async_block_till_done()


def _state(hass: HomeAssistant, platform: str, unique_id: str) -> Any:
    state = hass.states.get(entity_id(hass, platform, unique_id))
    assert state is not None
    return state


async def test_tou_input_and_remote_setpoint_show_what_limits_each_zone(  # noqa: PLR0915  # one story
    hass: HomeAssistant,
    clock: ManualClock,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
) -> None:
    fired: list[Event] = []
    hass.bus.async_listen(EVENT_TOU_PERIOD_CHANGED, fired.append)
    # The relay entity does not exist yet: the input counts as active and a repair says so.
    await _settle(hass)
    assert _state(hass, "sensor", "zone_main_limited_by").state == "input"
    assert _state(hass, "sensor", "zone_main_limited_by").attributes["input"] == "grid relay"
    assert float(_state(hass, "sensor", "zone_main_effective_limit_l1").state) == 20.0
    issues = ir.async_get(hass)
    assert issues.async_get_issue(DOMAIN, "digital_input_unavailable_i1") is not None
    # The relay reports off: nominal.
    hass.states.async_set(RELAY, "off")
    await _settle(hass)
    assert issues.async_get_issue(DOMAIN, "digital_input_unavailable_i1") is None
    assert _state(hass, "sensor", "zone_main_limited_by").state == "nominal"
    assert float(_state(hass, "sensor", "zone_main_effective_limit_l2").state) == 100.0
    assert hass.states.get(entity_id(hass, "sensor", "site_tou_period")).state == "none"
    assert hass.states.get(entity_id(hass, "sensor", "site_active_inputs")).state == "0"
    # 10:30 UTC is 02:30 in US/Pacific: the period starts (not in zone side).
    clock.advance(30 * 60)
    await _settle(hass)
    assert [e.data["period"] for e in fired] == ["peak"]
    assert hass.states.get(entity_id(hass, "sensor", "site_tou_period")).state == "peak"
    assert _state(hass, "sensor", "zone_main_limited_by").state == "tou"
    assert float(_state(hass, "sensor", "zone_main_effective_limit_l3").state) == 50.0
    assert _state(hass, "sensor", "zone_side_limited_by").state == "nominal"
    # The relay closes: inputs win over time-of-use, in every zone.
    hass.states.async_set(RELAY, "on")
    await _settle(hass)
    assert _state(hass, "sensor", "zone_side_limited_by").state == "input"
    assert float(_state(hass, "sensor", "zone_side_effective_limit_l1").state) == 8.0
    assert hass.states.get(entity_id(hass, "sensor", "site_active_inputs")).state == "1"
    hass.states.async_set(RELAY, "off")
    # A remote setpoint from a service action, shown by the zone's number entity.
    device = dr.async_get(hass).async_get_device(identifiers={zone_device_id("side")})
    assert device is not None
    response = await hass.services.async_call(
        DOMAIN,
        "set_zone_setpoint",
        {"device_id": device.id, "amps": 12},
        blocking=True,
        return_response=True,
    )
    assert response == {
        "code": "accepted",
        "message": "zone 'side' setpoint 12 A per phase accepted",
    }
    await _settle(hass)
    assert float(_state(hass, "number", "zone_side_remote_setpoint").state) == 12.0
    assert _state(hass, "sensor", "zone_side_limited_by").state == "remote"
    # A second one within the minimum period is refused with the reason.
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "set_zone_setpoint", {"device_id": device.id, "amps": 30}, blocking=True
        )
    assert err.value.translation_key == "setpoint_too_soon"
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            "number",
            "set_value",
            {"entity_id": entity_id(hass, "number", "zone_side_remote_setpoint"), "value": 20},
            blocking=True,
        )
    assert err.value.translation_key == "setpoint_too_soon"  # the number is the same command
    await hass.services.async_call(
        "number",
        "set_value",
        {"entity_id": entity_id(hass, "number", "zone_main_remote_setpoint"), "value": 40},
        blocking=True,
    )
    await _settle(hass)
    assert _state(hass, "sensor", "zone_main_limited_by").state == "remote"
    summary = await hass.services.async_call(
        DOMAIN, "get_tou_summary", {}, blocking=True, return_response=True
    )
    assert summary is not None
    assert summary["active_period"] == "peak"
    rows = {row["zone_id"]: row for row in summary["zones"]}  # type: ignore[union-attr]
    assert rows["main"]["periods"]["peak"] == {"amps": 50.0, "applies": True}
    assert rows["side"]["periods"]["peak"] == {"amps": 40.0, "applies": False}
    diagnostics = hub.rules.diagnostics()
    assert diagnostics["state"]["setpoints"] == {"side": 12.0, "main": 40.0}
    assert diagnostics["zone_limits"]["side"]["limited_by"] == "remote"


async def test_a_lapsed_heartbeat_fires_an_event_and_raises_a_repair(
    hass: HomeAssistant, clock: ManualClock, init_integration: MockConfigEntry
) -> None:
    hass.states.async_set(RELAY, "off")
    fired: list[Event] = []
    hass.bus.async_listen(f"{DOMAIN}_remote_setpoint_lapsed", fired.append)
    await hass.services.async_call(
        DOMAIN, "remote_setpoint_heartbeat", {}, blocking=True, return_response=True
    )
    clock.advance(601)
    await _settle(hass)
    assert [e.data["source"] for e in fired] == ["ha"]
    issues = ir.async_get(hass)
    assert issues.async_get_issue(DOMAIN, "remote_setpoint_lapsed") is not None
    await hass.services.async_call(
        DOMAIN, "remote_setpoint_heartbeat", {}, blocking=True, return_response=True
    )
    await _settle(hass)
    assert issues.async_get_issue(DOMAIN, "remote_setpoint_lapsed") is None


@pytest.mark.parametrize(
    ("slots", "field", "words"),
    [
        ("Mon-Fri 25:00-26:00", "slots", "not a time of day"),
        ("Mon-Fri", "slots", "no time range"),
        ("Mon 02:00-02:45", "slots", "overlap"),  # with "peak", daily 02:30-03:00
    ],
)
async def test_a_bad_period_is_refused_naming_the_field(
    hass: HomeAssistant, init_integration: MockConfigEntry, slots: str, field: str, words: str
) -> None:
    flow = await start_subentry_flow(hass, init_integration, SUBENTRY_TOU_PERIOD)
    result = await submit(hass, flow, {"name": "night", "percent": 30, "slots": slots})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {field: "invalid_period"}
    assert words in result["description_placeholders"]["error"]


async def test_periods_and_inputs_are_added_from_the_ui(
    hass: HomeAssistant, init_integration: MockConfigEntry, hub: EvChargingCoordinator
) -> None:
    hass.states.async_set(RELAY, "off")
    hass.states.async_set("binary_sensor.fire", "off")
    slots = "; ".join(f"Sat {h:02d}:00-{h:02d}:30" for h in range(20))
    flow = await start_subentry_flow(hass, init_integration, SUBENTRY_TOU_PERIOD)
    result = await submit(hass, flow, {"name": "weekend", "percent": 80, "slots": slots})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert hub.controller.tou.periods() == ("peak", "weekend")
    flow = await start_subentry_flow(hass, init_integration, SUBENTRY_DIGITAL_INPUT)
    result = await submit(
        hass, flow, {"name": "fire", "entity_id": "binary_sensor.nope", "percent": 0}
    )
    assert result["errors"] == {"entity_id": "entity_not_found"}
    result = await submit(
        hass, flow, {"name": "grid relay", "entity_id": "binary_sensor.fire", "percent": 0}
    )
    assert result["errors"] == {"name": "invalid_input"}
    result = await submit(
        hass, flow, {"name": "fire", "entity_id": "binary_sensor.fire", "percent": 0}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    hass.states.async_set("binary_sensor.fire", "on")
    await _settle(hass)
    assert hub.controller.rules_view().active_inputs == ("fire",)
    assert _state(hass, "sensor", "zone_main_limited_by").attributes["input"] == "fire"
    hass.states.async_set("binary_sensor.fire", STATE_UNAVAILABLE)
    await _settle(hass)
    assert hub.controller.rules_view().active_inputs == ("fire",)


async def test_the_tou_switch_and_a_period_that_follows_a_schedule(
    hass: HomeAssistant, init_integration: MockConfigEntry, hub: EvChargingCoordinator
) -> None:
    hass.states.async_set(RELAY, "off")
    hass.states.async_set("schedule.solar", "off")
    flow = await start_subentry_flow(hass, init_integration, SUBENTRY_TOU_PERIOD)
    result = await submit(
        hass, flow, {"name": "solar", "percent": 25, "source_entity": "schedule.solar"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await _settle(hass)
    assert hub.controller.rules_view().tou_period is None
    hass.states.async_set("schedule.solar", "on")
    await _settle(hass)
    assert hub.controller.rules_view().tou_period == "solar"
    assert _state(hass, "sensor", "zone_side_limited_by").attributes["period"] == "solar"
    # The site switch: off keeps the periods, nominal limits.
    switch = entity_id(hass, "switch", "site_tou_enabled")
    await hass.services.async_call("switch", "turn_off", {"entity_id": switch}, blocking=True)
    await _settle(hass)
    assert hass.states.get(switch).state == "off"
    assert init_integration.options["tou_enabled"] is False
    assert hub.controller.rules_view().tou_period is None
    assert _state(hass, "sensor", "zone_side_limited_by").state == "nominal"
    assert hub.controller.tou.periods() == ("peak", "solar")
    await hass.services.async_call("switch", "turn_on", {"entity_id": switch}, blocking=True)
    await _settle(hass)
    assert hub.controller.rules_view().tou_period == "solar"


async def test_timeslots_follow_the_time_zone_of_home_assistant(
    hass: HomeAssistant, clock: ManualClock, hub: EvChargingCoordinator
) -> None:
    hass.states.async_set(RELAY, "off")
    clock.advance(30 * 60)  # 10:30 UTC: 02:30 in US/Pacific, the "peak" slot
    await _settle(hass)
    assert hub.controller.rules_view().tou_period == "peak"
    await hass.config.async_update(time_zone="Europe/Paris")  # 11:30 there: no period
    await _settle(hass)
    assert str(hub.controller.tou.tz) == "Europe/Paris"
    assert hub.controller.rules_view().tou_period is None
    await hass.config.async_update(time_zone="US/Pacific")
    await _settle(hass)
    assert hub.controller.rules_view().tou_period == "peak"
