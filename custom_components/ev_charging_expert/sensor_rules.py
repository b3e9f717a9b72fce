"""Sensors of the operating rules.

Per zone: what limits it and its effective limit; per site: the active time-of-use period and
the active digital inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import UnitOfElectricCurrent
from homeassistant.helpers.dispatcher import async_dispatcher_connect

from .const import signal_rules
from .entity import EvChargingHubEntity, EvChargingZoneEntity, setup_zone_entities

if TYPE_CHECKING:
    from collections.abc import Callable

    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
    from homeassistant.helpers.typing import StateType

    from .coordinator import EvChargingConfigEntry
    from .evcore.view import ZoneView

LIMITED_BY_OPTIONS = ["nominal", "dynamic", "meter_lost", "tou", "input", "remote"]
NO_PERIOD = "none"


def limited_by_category(reason: str) -> str:
    """The enum state of a reason ("tou:peak" -> "tou")."""
    category = reason.split(":", 1)[0]
    return category if category in LIMITED_BY_OPTIONS else "nominal"


@dataclass(frozen=True, kw_only=True)
class ZoneRuleSensorDescription(SensorEntityDescription):
    """A zone sensor of the operating rules."""

    value_fn: Callable[[ZoneView], StateType]
    attributes_fn: Callable[[ZoneView], dict[str, Any]] | None = None


def _effective(phase: int) -> ZoneRuleSensorDescription:
    return ZoneRuleSensorDescription(
        key=f"effective_limit_l{phase + 1}",
        translation_key=f"effective_limit_l{phase + 1}",
        device_class=SensorDeviceClass.CURRENT,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        suggested_display_precision=1,
        value_fn=lambda z: round(z.effective_limit[phase], 2),
    )


def _limited_by_attributes(view: ZoneView) -> dict[str, Any]:
    category, _, name = view.limited_by.partition(":")
    attributes: dict[str, Any] = {"rule": view.limited_by}
    if category == "tou":
        attributes["period"] = name
    elif category == "input":
        attributes["input"] = name
    if view.remote_setpoint is not None:
        attributes["remote_setpoint"] = view.remote_setpoint
    return attributes


ZONE_RULE_SENSORS: tuple[ZoneRuleSensorDescription, ...] = (
    ZoneRuleSensorDescription(
        key="limited_by",
        translation_key="limited_by",
        device_class=SensorDeviceClass.ENUM,
        options=LIMITED_BY_OPTIONS,
        value_fn=lambda z: limited_by_category(z.limited_by),
        attributes_fn=_limited_by_attributes,
    ),
    *(_effective(p) for p in range(3)),
)


class ZoneRuleSensor(EvChargingZoneEntity, SensorEntity):
    """What limits a zone now, or its limit under the rules."""

    entity_description: ZoneRuleSensorDescription

    @property
    def available(self) -> bool:
        """Available once the zone has been allocated."""
        return self.hub.zone_view(self.zone_id) is not None

    @property
    def native_value(self) -> StateType:
        """From the last allocation run."""
        view = self.hub.zone_view(self.zone_id)
        return None if view is None else self.entity_description.value_fn(view)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """The full rule (period or input name) for the reason sensor."""
        view = self.hub.zone_view(self.zone_id)
        attributes_fn = self.entity_description.attributes_fn
        return None if view is None or attributes_fn is None else attributes_fn(view)


class SiteRulesSensor(EvChargingHubEntity, SensorEntity):
    """A sensor of the site (the hub device) about the operating rules."""

    async def async_added_to_hass(self) -> None:
        """Follow the rules' signal."""
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_rules(self.hub.entry.entry_id), self.async_write_ha_state
            )
        )


class TouPeriodSensor(SiteRulesSensor):
    """The active time-of-use period ("none": nominal limits)."""

    @property
    def options(self) -> list[str]:
        """The configured periods, and none."""
        return [NO_PERIOD, *self.hub.controller.tou.periods()]

    @property
    def native_value(self) -> str:
        """The period now."""
        return self.hub.controller.rules_view().tou_period or NO_PERIOD

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Whether time-of-use is on."""
        return {"enabled": self.hub.controller.rules_view().tou_enabled}


class ActiveInputsSensor(SiteRulesSensor):
    """How many digital inputs are active, and which."""

    @property
    def native_value(self) -> int:
        """The number of active inputs."""
        return len(self.hub.controller.rules_view().active_inputs)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Their names."""
        return {"inputs": list(self.hub.controller.rules_view().active_inputs)}


TOU_PERIOD = SensorEntityDescription(
    key="tou_period",
    translation_key="tou_period",
    device_class=SensorDeviceClass.ENUM,
)
ACTIVE_INPUTS = SensorEntityDescription(
    key="active_inputs",
    translation_key="active_inputs",
    state_class=SensorStateClass.MEASUREMENT,
)


def async_setup_rules_sensors(
    entry: EvChargingConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Add the rules' sensors: per zone (now and for new zones) and for the site."""
    hub = entry.runtime_data
    async_add_entities([TouPeriodSensor(hub, TOU_PERIOD), ActiveInputsSensor(hub, ACTIVE_INPUTS)])
    setup_zone_entities(
        entry,
        async_add_entities,
        lambda hub, zone_id: [ZoneRuleSensor(hub, zone_id, d) for d in ZONE_RULE_SENSORS],
    )
