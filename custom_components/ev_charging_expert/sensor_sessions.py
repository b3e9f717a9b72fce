"""Sensors of the charge data records, per station and per connector.

Last session energy and duration, and the energy of the sessions ended today and this month
(`total_increasing`: the Energy dashboard takes them; they reset at local midnight / the 1st).
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
from homeassistant.const import UnitOfEnergy, UnitOfTime

from .entity import EvChargingEntity
from .sessions_glue import sessions_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from homeassistant.helpers.typing import StateType

    from .coordinator import EvChargingCoordinator
    from .sessions_glue import SessionsHub


@dataclass(frozen=True, kw_only=True)
class SessionSensorDescription(SensorEntityDescription):
    """A figure from the session records of a station (connector None) or a connector."""

    value_fn: Callable[[SessionsHub, str, int | None], StateType]


def _last_energy(sessions: SessionsHub, sid: str, cid: int | None) -> StateType:
    record = sessions.last(sid, cid)
    return None if record is None or record.energy_wh is None else record.energy_wh / 1000.0


def _last_duration(sessions: SessionsHub, sid: str, cid: int | None) -> StateType:
    record = sessions.last(sid, cid)
    return None if record is None or record.plugged_s is None else record.plugged_s / 60.0


SESSION_SENSORS: tuple[SessionSensorDescription, ...] = (
    SessionSensorDescription(
        key="last_session_energy",
        translation_key="last_session_energy",
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
        value_fn=_last_energy,
    ),
    SessionSensorDescription(
        key="last_session_duration",
        translation_key="last_session_duration",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MINUTES,
        suggested_display_precision=0,
        value_fn=_last_duration,
    ),
    SessionSensorDescription(
        key="energy_today",
        translation_key="sessions_energy_today",
        device_class=SensorDeviceClass.ENERGY,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
        value_fn=lambda s, sid, cid: s.energy_today(sid, cid) / 1000.0,
    ),
    SessionSensorDescription(
        key="energy_this_month",
        translation_key="sessions_energy_month",
        device_class=SensorDeviceClass.ENERGY,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
        entity_registry_enabled_default=False,
        value_fn=lambda s, sid, cid: s.energy_month(sid, cid) / 1000.0,
    ),
)


class SessionSensor(EvChargingEntity, SensorEntity):
    """A session figure; kept while the charger is offline (records do not go stale)."""

    entity_description: SessionSensorDescription
    _available_when_offline = True

    @property
    def available(self) -> bool:
        """While the station is known and the session store runs."""
        return super().available and sessions_of(self.hub) is not None

    @property
    def native_value(self) -> StateType:
        """From the session store's totals and last records."""
        sessions = sessions_of(self.hub)
        if sessions is None:
            return None
        return self.entity_description.value_fn(sessions, self.station_id, self.connector_id)


def session_station_sensors(hub: EvChargingCoordinator, station_id: str) -> list[SensorEntity]:
    """The session sensors of a station."""
    return [SessionSensor(hub, station_id, None, d) for d in SESSION_SENSORS]


def session_connector_sensors(
    hub: EvChargingCoordinator, station_id: str, connector_id: int
) -> list[SensorEntity]:
    """The session sensors of a connector."""
    return [SessionSensor(hub, station_id, connector_id, d) for d in SESSION_SENSORS]
