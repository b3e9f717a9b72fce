"""Sensors: connector status and metering, session, station status, zones and power meters.

Longer than the other platforms on purpose: most of it is the description tables (one entry
per sensor, with its unit, device class and value function); the entity classes are short.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    EntityCategory,
    UnitOfElectricCurrent,
    UnitOfEnergy,
    UnitOfPower,
    UnitOfTime,
)
from homeassistant.core import callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect

from .const import signal_new_meter
from .entity import (
    EvChargingEntity,
    EvChargingMeterEntity,
    EvChargingZoneEntity,
    setup_platform_entities,
    setup_zone_entities,
)
from .evcore.allocation.model import Reason
from .evcore.config import ZoneMode
from .evcore.meters import MeterState
from .evcore.model import ConnectorState, ConnectorStatus, StationState
from .sensor_rules import async_setup_rules_sensors

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
    from homeassistant.helpers.typing import StateType

    from .coordinator import EvChargingConfigEntry, EvChargingCoordinator
    from .evcore.config import ZoneConfig
    from .evcore.meters import MeterReading
    from .evcore.view import MeterView, ZoneView

PARALLEL_UPDATES = 0

# OCPP values as enum options: "DownloadFailed" -> "download_failed".
FIRMWARE_STATUSES = [
    "downloaded",
    "download_failed",
    "downloading",
    "idle",
    "installation_failed",
    "installing",
    "installed",
]
DIAGNOSTICS_STATUSES = ["idle", "uploaded", "upload_failed", "uploading"]
ERROR_CODES = [
    "connector_lock_failure",
    "ev_communication_error",
    "ground_failure",
    "high_temperature",
    "internal_error",
    "local_list_conflict",
    "no_error",
    "other_error",
    "over_current_failure",
    "over_voltage",
    "power_meter_failure",
    "power_switch_failure",
    "reader_failure",
    "reset_failure",
    "under_voltage",
    "weak_signal",
]
_ERROR_CODE_OPTION = {
    "ConnectorLockFailure": "connector_lock_failure",
    "EVCommunicationError": "ev_communication_error",
    "GroundFailure": "ground_failure",
    "HighTemperature": "high_temperature",
    "InternalError": "internal_error",
    "LocalListConflict": "local_list_conflict",
    "NoError": "no_error",
    "OtherError": "other_error",
    "OverCurrentFailure": "over_current_failure",
    "OverVoltage": "over_voltage",
    "PowerMeterFailure": "power_meter_failure",
    "PowerSwitchFailure": "power_switch_failure",
    "ReaderFailure": "reader_failure",
    "ResetFailure": "reset_failure",
    "UnderVoltage": "under_voltage",
    "WeakSignal": "weak_signal",
}
# "unknown" (no StatusNotification yet) is HA's own unknown state, not an option.
_STATUS_OPTIONS = [s.value for s in ConnectorStatus if s is not ConnectorStatus.UNKNOWN]


def _status(connector: ConnectorState | None) -> str | None:
    if connector is None or connector.status is ConnectorStatus.UNKNOWN:
        return None
    return connector.status.value


def _snake(value: str | None, options: list[str]) -> str | None:
    if value is None:
        return None
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in value).lstrip("_")
    return snake if snake in options else None


def _session_duration(connector: ConnectorState, now: datetime) -> float | None:
    if connector.transaction is None:
        return None
    return max((now - connector.transaction.started_at).total_seconds(), 0.0)


@dataclass(frozen=True, kw_only=True)
class StationSensorDescription(SensorEntityDescription):
    """A sensor of the station as a whole."""

    value_fn: Callable[[StationState], StateType | datetime]


@dataclass(frozen=True, kw_only=True)
class ConnectorSensorDescription(SensorEntityDescription):
    """A sensor of one connector; `now` is given for durations."""

    value_fn: Callable[[ConnectorState, datetime], StateType | datetime]


STATION_SENSORS: tuple[StationSensorDescription, ...] = (
    StationSensorDescription(
        key="status",
        translation_key="station_status",
        device_class=SensorDeviceClass.ENUM,
        options=_STATUS_OPTIONS,
        value_fn=lambda s: _status(s.connectors.get(0)),
    ),
    StationSensorDescription(
        key="last_heartbeat",
        translation_key="last_heartbeat",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: s.last_heartbeat,
    ),
    StationSensorDescription(
        key="firmware_status",
        translation_key="firmware_status",
        device_class=SensorDeviceClass.ENUM,
        options=FIRMWARE_STATUSES,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: _snake(s.firmware_status, FIRMWARE_STATUSES),
    ),
    StationSensorDescription(
        key="diagnostics_status",
        translation_key="diagnostics_status",
        device_class=SensorDeviceClass.ENUM,
        options=DIAGNOSTICS_STATUSES,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: _snake(s.diagnostics_status, DIAGNOSTICS_STATUSES),
    ),
)


def _current(phase: str) -> ConnectorSensorDescription:
    return ConnectorSensorDescription(
        key=f"current_{phase.lower()}",
        translation_key=f"current_{phase.lower()}",
        device_class=SensorDeviceClass.CURRENT,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        suggested_display_precision=1,
        value_fn=lambda c, _: c.current(phase),
    )


CONNECTOR_SENSORS: tuple[ConnectorSensorDescription, ...] = (
    ConnectorSensorDescription(
        key="status",
        translation_key="connector_status",
        device_class=SensorDeviceClass.ENUM,
        options=_STATUS_OPTIONS,
        value_fn=lambda c, _: _status(c),
    ),
    ConnectorSensorDescription(
        key="error_code",
        translation_key="error_code",
        device_class=SensorDeviceClass.ENUM,
        options=ERROR_CODES,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda c, _: _ERROR_CODE_OPTION.get(c.error_code),
    ),
    _current("L1"),
    _current("L2"),
    _current("L3"),
    ConnectorSensorDescription(
        key="power",
        translation_key="power",
        device_class=SensorDeviceClass.POWER,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfPower.WATT,
        suggested_display_precision=0,
        value_fn=lambda c, _: c.power_w,
    ),
    ConnectorSensorDescription(
        key="energy",
        translation_key="energy",
        device_class=SensorDeviceClass.ENERGY,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfEnergy.WATT_HOUR,
        suggested_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
        value_fn=lambda c, _: c.energy_wh,
    ),
    ConnectorSensorDescription(
        key="session_energy",
        translation_key="session_energy",
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.WATT_HOUR,
        suggested_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
        value_fn=lambda c, _: c.session_energy_wh,
    ),
    ConnectorSensorDescription(
        key="session_duration",
        translation_key="session_duration",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        suggested_unit_of_measurement=UnitOfTime.MINUTES,
        suggested_display_precision=0,
        value_fn=_session_duration,
    ),
    ConnectorSensorDescription(
        key="id_tag",
        translation_key="id_tag",
        value_fn=lambda c, _: c.transaction.id_tag if c.transaction else None,
    ),
)


UNMANAGED = "unassigned"
ALLOCATION_REASONS = [r.value for r in Reason] + [UNMANAGED]


@dataclass(frozen=True, kw_only=True)
class LoadSensorDescription(SensorEntityDescription):
    """A connector's load-management sensor: from (setpoint, reason)."""

    value_fn: Callable[[float | None, Reason | None], StateType]


LOAD_SENSORS: tuple[LoadSensorDescription, ...] = (
    LoadSensorDescription(
        key="setpoint",
        translation_key="setpoint",
        device_class=SensorDeviceClass.CURRENT,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        suggested_display_precision=1,
        value_fn=lambda setpoint, reason: setpoint if reason is not None else 0.0,
    ),
    LoadSensorDescription(
        key="allocation",
        translation_key="allocation",
        device_class=SensorDeviceClass.ENUM,
        options=ALLOCATION_REASONS,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda _, reason: reason.value if reason is not None else UNMANAGED,
    ),
)


@dataclass(frozen=True, kw_only=True)
class ZoneSensorDescription(SensorEntityDescription):
    """A zone sensor: from the zone's status of the last allocation."""

    value_fn: Callable[[ZoneView], StateType]


def _zone_phase(key: str, phase: int) -> ZoneSensorDescription:
    return ZoneSensorDescription(
        key=f"{key}_l{phase + 1}",
        translation_key=f"{key}_l{phase + 1}",
        device_class=SensorDeviceClass.CURRENT,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        suggested_display_precision=1,
        value_fn=lambda z: round(getattr(z, key)[phase], 2),
    )


ZONE_SENSORS: tuple[ZoneSensorDescription, ...] = (
    *(_zone_phase("budget", p) for p in range(3)),
    *(_zone_phase("allocated", p) for p in range(3)),
    ZoneSensorDescription(
        key="evs_charging",
        translation_key="evs_charging",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda z: z.charging,
    ),
    ZoneSensorDescription(
        key="evs_suspended",
        translation_key="evs_suspended",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda z: z.suspended,
    ),
)


@dataclass(frozen=True, kw_only=True)
class ZoneConfigSensorDescription(SensorEntityDescription):
    """A zone sensor: from the zone's configuration."""

    value_fn: Callable[[ZoneConfig], StateType]


ZONE_CONFIG_SENSORS: tuple[ZoneConfigSensorDescription, ...] = (
    ZoneConfigSensorDescription(
        key="max_current",
        translation_key="zone_max_current",
        device_class=SensorDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda zone: zone.max_current,
    ),
    ZoneConfigSensorDescription(
        key="mode",
        translation_key="zone_mode",
        device_class=SensorDeviceClass.ENUM,
        options=[m.value for m in ZoneMode],
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda zone: zone.mode.value,
    ),
    ZoneConfigSensorDescription(
        key="degraded_setpoint",
        translation_key="zone_degraded_setpoint",
        device_class=SensorDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda zone: zone.degraded_setpoint,
    ),
)
STATION_DEGRADED = SensorEntityDescription(
    key="degraded_current",
    translation_key="degraded_current",
    device_class=SensorDeviceClass.CURRENT,
    native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
    suggested_display_precision=1,
    entity_category=EntityCategory.DIAGNOSTIC,
)


@dataclass(frozen=True, kw_only=True)
class MeterSensorDescription(SensorEntityDescription):
    """A power meter's sensor: from what its entities show (`MeterView`)."""

    value_fn: Callable[[MeterView], StateType | datetime]
    needs_reading: bool = True
    """Unavailable while the meter has no reading (the connection sensors stay available)."""


def _reading_value(
    fn: Callable[[MeterReading], float | None],
) -> Callable[[MeterView], float | None]:
    return lambda view: None if view.reading is None else fn(view.reading)


def _meter_current(phase: int) -> MeterSensorDescription:
    return MeterSensorDescription(
        key=f"current_l{phase}",
        translation_key=f"current_l{phase}",
        device_class=SensorDeviceClass.CURRENT,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        suggested_display_precision=1,
        value_fn=_reading_value(lambda r: round(r.current(phase), 3)),
    )


METER_SENSORS: tuple[MeterSensorDescription, ...] = (
    *(_meter_current(phase) for phase in (1, 2, 3)),
    MeterSensorDescription(
        key="power",
        translation_key="power",
        device_class=SensorDeviceClass.POWER,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfPower.WATT,
        suggested_display_precision=0,
        # float32 registers carry ~7 significant digits: tenths of a watt are already noise.
        value_fn=_reading_value(
            lambda r: None if r.total_power_w is None else round(r.total_power_w, 1)
        ),
    ),
    MeterSensorDescription(
        key="energy",
        translation_key="energy",
        device_class=SensorDeviceClass.ENERGY,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfEnergy.WATT_HOUR,
        suggested_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
        value_fn=_reading_value(lambda r: r.energy_wh),
    ),
    MeterSensorDescription(
        key="connection",
        translation_key="meter_connection",
        device_class=SensorDeviceClass.ENUM,
        options=[s.value for s in MeterState],
        entity_category=EntityCategory.DIAGNOSTIC,
        needs_reading=False,
        value_fn=lambda view: view.state.value,
    ),
    MeterSensorDescription(
        key="last_read",
        translation_key="meter_last_read",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        needs_reading=False,
        value_fn=lambda view: view.last_success,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvChargingConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up sensors for every station and connector, now and as they appear."""

    def station_entities(hub: EvChargingCoordinator, station_id: str) -> list[SensorEntity]:
        return [
            *(StationSensor(hub, station_id, None, d) for d in STATION_SENSORS),
            DegradedCurrentSensor(hub, station_id, None, STATION_DEGRADED),
        ]

    def connector_entities(
        hub: EvChargingCoordinator, station_id: str, connector_id: int
    ) -> list[SensorEntity]:
        return [
            *(ConnectorSensor(hub, station_id, connector_id, d) for d in CONNECTOR_SENSORS),
            *(LoadSensor(hub, station_id, connector_id, d) for d in LOAD_SENSORS),
        ]

    def zone_entities(hub: EvChargingCoordinator, zone_id: str) -> list[SensorEntity]:
        return [
            *(ZoneSensor(hub, zone_id, d) for d in ZONE_SENSORS),
            *(ZoneConfigSensor(hub, zone_id, d) for d in ZONE_CONFIG_SENSORS),
        ]

    setup_platform_entities(
        entry,
        async_add_entities,
        station_entities=station_entities,
        connector_entities=connector_entities,
    )
    setup_zone_entities(entry, async_add_entities, zone_entities)
    _setup_meter_entities(entry, async_add_entities)
    async_setup_rules_sensors(entry, async_add_entities)


def _setup_meter_entities(
    entry: EvChargingConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Each meter's sensors under its subentry; more when a reconfigured meter reports more."""
    hub = entry.runtime_data

    @callback
    def _add(meter_id: str) -> None:
        if meter_id not in hub.entry.subentries:
            return
        wanted = hub.meters.entity_keys(meter_id)
        made = hub.meters.entities.setdefault(meter_id, set())
        new = [d for d in METER_SENSORS if d.key in wanted and d.key not in made]
        made.update(d.key for d in new)
        if new:
            async_add_entities(
                [MeterSensor(hub, meter_id, d) for d in new], config_subentry_id=meter_id
            )

    for meter_id in hub.meters.ids():
        _add(meter_id)
    entry.async_on_unload(
        async_dispatcher_connect(hub.hass, signal_new_meter(entry.entry_id), _add)
    )


class StationSensor(EvChargingEntity, SensorEntity):
    """A station-level sensor."""

    entity_description: StationSensorDescription

    @property
    def native_value(self) -> StateType | datetime:
        """The value from the station's state."""
        return self.entity_description.value_fn(self.station)


class ConnectorSensor(EvChargingEntity, SensorEntity):
    """A connector-level sensor."""

    entity_description: ConnectorSensorDescription

    @property
    def native_value(self) -> StateType | datetime:
        """The value from the connector's state."""
        return self.entity_description.value_fn(self.connector, self.hub.site.clock.now())


class LoadSensor(EvChargingEntity, SensorEntity):
    """The connector's setpoint, or why it has none."""

    entity_description: LoadSensorDescription

    @property
    def native_value(self) -> StateType:
        """From the last allocation."""
        assert self.connector_id is not None  # noqa: S101
        allocation = self.hub.allocation(self.station_id, self.connector_id)
        if allocation is None:
            return self.entity_description.value_fn(None, None)
        return self.entity_description.value_fn(allocation.setpoint, allocation.reason)


class ZoneSensor(EvChargingZoneEntity, SensorEntity):
    """A zone value from the last allocation."""

    entity_description: ZoneSensorDescription

    @property
    def available(self) -> bool:
        """Available once the zone has been allocated."""
        return self.hub.zone_view(self.zone_id) is not None

    @property
    def native_value(self) -> StateType:
        """The value."""
        status = self.hub.zone_view(self.zone_id)
        return None if status is None else self.entity_description.value_fn(status)


class ZoneConfigSensor(EvChargingZoneEntity, SensorEntity):
    """A zone's configured value."""

    entity_description: ZoneConfigSensorDescription

    @property
    def native_value(self) -> StateType:
        """From the zone's configuration."""
        zone = self.hub.zones.get(self.zone_id)
        return None if zone is None else self.entity_description.value_fn(zone)


class MeterSensor(EvChargingMeterEntity, SensorEntity):
    """A power meter's value or connection state; pushed by the hub."""

    entity_description: MeterSensorDescription

    @property
    def available(self) -> bool:
        """Values only while the meter has a reading; its connection state always."""
        view = self.meter_view
        if view is None:
            return False
        return not self.entity_description.needs_reading or view.reading is not None

    @property
    def native_value(self) -> StateType | datetime:
        """From the meter's view."""
        view = self.meter_view
        return None if view is None else self.entity_description.value_fn(view)

    @property
    def extra_state_attributes(self) -> dict[str, str | None] | None:
        """Why the meter is not connected (connection sensor only)."""
        if self.entity_description.key != "connection":
            return None
        view = self.meter_view
        return {"reason": view.reason if view else None}


class DegradedCurrentSensor(EvChargingEntity, SensorEntity):
    """What the station may draw when it loses us, all stations on their fallback at once."""

    _available_when_offline = True

    @property
    def native_value(self) -> float | None:
        """From the last degraded-mode computation (None: not in a zone)."""
        return self.hub.controller.degraded_current(self.station_id)
