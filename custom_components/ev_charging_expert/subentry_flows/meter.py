"""Subentry flow of a power meter: read over Modbus, or made of Home Assistant sensors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import SOURCE_RECONFIGURE, ConfigSubentryFlow, SubentryFlowResult
from homeassistant.data_entry_flow import section
from homeassistant.helpers import selector
import voluptuous as vol

from ..const import (
    CONF_BAUDRATE,
    CONF_CURRENTS,
    CONF_ENERGY,
    CONF_MAX_AGE,
    CONF_METER_KIND,
    CONF_MODEL,
    CONF_NOMINAL_VOLTAGE,
    CONF_PARITY,
    CONF_POLLING_PERIOD,
    CONF_POWER_TOTAL,
    CONF_POWERS,
    CONF_PROTOCOL,
    CONF_REPORTING_ONLY,
    CONF_SERIAL,
    CONF_SERIAL_PORT,
    CONF_SLAVE_ID,
    CONF_STOPBITS,
    CONF_TIMEOUT,
    CONF_VOLTAGE,
    DEFAULT_NOMINAL_VOLTAGE,
    METER_KIND_HA_SENSORS,
    METER_KIND_MODBUS,
    SECTION_CURRENTS,
    SECTION_POWERS,
    SECTION_TOTALS,
)
from ..entry_data import meter_subentries, models_from_entry, zone_meter_ids
from ..evcore.clock import SystemClock
from ..evcore.errors import ConfigError
from ..evcore.meters import (
    MeterConfig,
    MeterPool,
    MeterProtocol,
    Parity,
    SerialSettings,
)
from ..evcore.meters.config import (
    BAUDRATES,
    DEFAULT_POLLING_PERIOD,
    DEFAULT_PORT as DEFAULT_MODBUS_PORT,
    DEFAULT_SLAVE_ID,
    DEFAULT_TIMEOUT,
)
from ..evcore.meters.external import DEFAULT_MAX_AGE
from ..ha_meters import HaSensorMeterConfig, HaSensorMeterConfigError
from .common import FormError, plain_select, suggested, translated_select

if TYPE_CHECKING:
    from collections.abc import Mapping

    from homeassistant.config_entries import ConfigEntry


def _name_error(entry: ConfigEntry, meter_id: str | None, name: str) -> FormError | None:
    """A meter needs a name no other meter has (it names the meter's device)."""
    name = name.strip().casefold()
    if not name:
        return FormError("name_required", "name")
    for other_id, other in meter_subentries(entry).items():
        if other_id != meter_id and other.title.strip().casefold() == name:
            return FormError("name_taken", "name")
    return None


def _reporting_only_error(entry: ConfigEntry, meter_id: str | None) -> FormError | None:
    zone_id = next((z for z, m in zone_meter_ids(entry).items() if m == meter_id), None)
    if meter_id is None or zone_id is None:
        return None
    return FormError(
        "meter_drives_zone", CONF_REPORTING_ONLY, {"zone": entry.subentries[zone_id].title}
    )


def _pool_error(entry: ConfigEntry, meter_id: str | None, config: MeterConfig) -> FormError | None:
    """Whether the meter's model exists and it can share its gateway with the other meters."""
    registry, _ = models_from_entry(entry)
    if config.model not in registry:
        return FormError("unknown_model", CONF_MODEL)
    # Never started: nothing connects, it only checks the gateway sharing.
    pool = MeterPool(SystemClock(), registry)
    for other_id, other in meter_subentries(entry).items():
        if other_id == meter_id or other.data.get(CONF_METER_KIND) == METER_KIND_HA_SENSORS:
            continue
        try:
            pool.add(MeterConfig.from_dict(other_id, other.data))
        except ConfigError:
            continue  # the hub reports that one
    try:
        pool.add(config)
    except ConfigError:
        # A slave id taken on that gateway, or a gateway used with other framing or line
        # settings: evcore words it, the form says it in the user's language.
        return FormError("gateway_conflict")
    return None


def _modbus_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """The form's values from a stored meter (or from a submitted form)."""
    values = dict(data)
    serial = data.get(CONF_SERIAL) or {}
    values[CONF_SERIAL_PORT] = serial.get("port", serial.get(CONF_SERIAL_PORT))
    for key in (CONF_BAUDRATE, CONF_PARITY, CONF_STOPBITS):
        if key in serial:
            values[key] = str(serial[key])
    return values


def _modbus_schema(values: Mapping[str, Any], models: list[str]) -> vol.Schema:
    protocol = values.get(CONF_PROTOCOL, MeterProtocol.TCP)
    return vol.Schema(
        {
            vol.Required("name", default=values.get("name", "")): str,
            vol.Required(CONF_MODEL, default=values.get(CONF_MODEL, models[0])): plain_select(
                models
            ),
            vol.Required(CONF_PROTOCOL, default=protocol): translated_select(
                [p.value for p in MeterProtocol], "meter_protocol"
            ),
            vol.Optional("host", description={"suggested_value": values.get("host")}): str,
            vol.Required("port", default=values.get("port", DEFAULT_MODBUS_PORT)): vol.Coerce(int),
            vol.Required(
                CONF_SLAVE_ID, default=values.get(CONF_SLAVE_ID, DEFAULT_SLAVE_ID)
            ): vol.Coerce(int),
            vol.Required(
                CONF_POLLING_PERIOD,
                default=values.get(CONF_POLLING_PERIOD, DEFAULT_POLLING_PERIOD),
            ): vol.Coerce(float),
            vol.Required(
                CONF_TIMEOUT, default=values.get(CONF_TIMEOUT, DEFAULT_TIMEOUT)
            ): vol.Coerce(float),
            vol.Required(
                CONF_REPORTING_ONLY, default=bool(values.get(CONF_REPORTING_ONLY, False))
            ): bool,
            vol.Required(CONF_SERIAL): section(
                vol.Schema(
                    {
                        vol.Optional(
                            CONF_SERIAL_PORT,
                            description={"suggested_value": values.get(CONF_SERIAL_PORT)},
                        ): str,
                        vol.Required(
                            CONF_BAUDRATE, default=str(values.get(CONF_BAUDRATE, 19200))
                        ): plain_select([str(b) for b in BAUDRATES]),
                        vol.Required(
                            CONF_PARITY, default=str(values.get(CONF_PARITY, Parity.EVEN))
                        ): translated_select([p.value for p in Parity], CONF_PARITY),
                        vol.Required(
                            CONF_STOPBITS, default=str(values.get(CONF_STOPBITS, 1))
                        ): plain_select(["1", "2"]),
                    }
                ),
                {"collapsed": protocol != MeterProtocol.RTU},
            ),
        }
    )


def _modbus_config(meter_id: str | None, user_input: Mapping[str, Any]) -> MeterConfig:
    """The meter the form describes; ConfigError names the wrong field."""
    protocol = MeterProtocol(user_input.get(CONF_PROTOCOL, MeterProtocol.TCP))
    serial: SerialSettings | None = None
    if protocol is MeterProtocol.RTU:
        line = user_input.get(CONF_SERIAL) or {}
        serial = SerialSettings(
            port=str(line.get(CONF_SERIAL_PORT) or "").strip(),
            baudrate=int(line.get(CONF_BAUDRATE, 19200)),
            parity=line.get(CONF_PARITY, Parity.EVEN),
            stopbits=int(line.get(CONF_STOPBITS, 1)),
        )
    return MeterConfig(
        meter_id=meter_id or "new",
        name=str(user_input.get("name", "")).strip(),
        model=str(user_input.get(CONF_MODEL, "")),
        protocol=protocol,
        host=(user_input.get("host") or None) if protocol.is_tcp else None,
        port=user_input.get("port", DEFAULT_MODBUS_PORT),
        slave_id=user_input.get(CONF_SLAVE_ID, DEFAULT_SLAVE_ID),
        serial=serial,
        polling_period=user_input.get(CONF_POLLING_PERIOD, DEFAULT_POLLING_PERIOD),
        timeout=user_input.get(CONF_TIMEOUT, DEFAULT_TIMEOUT),
        reporting_only=bool(user_input.get(CONF_REPORTING_ONLY, False)),
    )


def _sensor(device_class: str) -> selector.EntitySelector:
    return selector.EntitySelector(
        selector.EntitySelectorConfig(domain="sensor", device_class=device_class)
    )


def _ha_sensors_schema(values: Mapping[str, Any], voltage: float) -> vol.Schema:
    powers = any(values.get(k) for k in CONF_POWERS)
    power_fields: dict[vol.Marker, Any] = {
        suggested(k, values): _sensor("power") for k in CONF_POWERS
    }
    return vol.Schema(
        {
            vol.Required("name", default=values.get("name", "")): str,
            vol.Required(SECTION_CURRENTS): section(
                vol.Schema({suggested(k, values): _sensor("current") for k in CONF_CURRENTS}),
                {"collapsed": powers},
            ),
            vol.Required(SECTION_POWERS): section(
                vol.Schema(
                    {
                        **power_fields,
                        vol.Required(
                            CONF_VOLTAGE, default=values.get(CONF_VOLTAGE, voltage)
                        ): vol.Coerce(float),
                    }
                ),
                {"collapsed": not powers},
            ),
            vol.Required(SECTION_TOTALS): section(
                vol.Schema(
                    {
                        suggested(CONF_POWER_TOTAL, values): _sensor("power"),
                        suggested(CONF_ENERGY, values): _sensor("energy"),
                    }
                ),
                {"collapsed": not (values.get(CONF_POWER_TOTAL) or values.get(CONF_ENERGY))},
            ),
            vol.Required(
                CONF_MAX_AGE, default=values.get(CONF_MAX_AGE, DEFAULT_MAX_AGE)
            ): vol.Coerce(float),
        }
    )


def _ha_sensors_values(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """The form's sections flattened into a meter's data."""
    values: dict[str, Any] = {
        "name": str(user_input.get("name", "")).strip(),
        CONF_MAX_AGE: user_input.get(CONF_MAX_AGE, DEFAULT_MAX_AGE),
    }
    for name in (SECTION_CURRENTS, SECTION_POWERS, SECTION_TOTALS):
        values.update(
            {k: v for k, v in (user_input.get(name) or {}).items() if v not in ("", None)}
        )
    return values


class MeterSubentryFlow(ConfigSubentryFlow):
    """Add or change a power meter: read over Modbus, or made of Home Assistant sensors."""

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Choose the kind of meter."""
        return self.async_show_menu(
            step_id="user", menu_options=[METER_KIND_MODBUS, METER_KIND_HA_SENSORS]
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change a meter (its kind stays); applied live."""
        if self._get_reconfigure_subentry().data.get(CONF_METER_KIND) == METER_KIND_HA_SENSORS:
            return await self.async_step_ha_sensors()
        return await self.async_step_modbus()

    @property
    def _meter_id(self) -> str | None:
        return self._reconfigure_subentry_id if self.source == SOURCE_RECONFIGURE else None

    def _finish(self, data: dict[str, Any]) -> SubentryFlowResult:
        entry = self._get_entry()
        if (meter_id := self._meter_id) is None:
            return self.async_create_entry(title=data["name"], data=data)
        return self.async_update_and_abort(
            entry, entry.subentries[meter_id], title=data["name"], data=data
        )

    def _stored(self) -> Mapping[str, Any]:
        meter_id = self._meter_id
        return self._get_entry().subentries[meter_id].data if meter_id else {}

    async def async_step_modbus(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """A meter read over Modbus TCP, RTU over TCP (a gateway) or RTU (a serial port)."""
        entry = self._get_entry()
        meter_id = self._meter_id
        values = _modbus_values(self._stored())
        error: FormError | None = None
        if user_input is not None:
            error = _name_error(entry, meter_id, str(user_input.get("name", "")))
            if error is None:
                try:
                    config = _modbus_config(meter_id, user_input)
                except ConfigError:
                    error = FormError("invalid_meter")
                else:
                    error = (
                        _reporting_only_error(entry, meter_id) if config.reporting_only else None
                    ) or _pool_error(entry, meter_id, config)
                    if error is None:
                        return self._finish(
                            {CONF_METER_KIND: METER_KIND_MODBUS, **config.to_dict()}
                        )
            values = _modbus_values(user_input)
        registry, _ = models_from_entry(entry)
        return self.async_show_form(
            step_id=METER_KIND_MODBUS,
            data_schema=_modbus_schema(values, registry.names()),
            errors=error.errors if error else {},
            description_placeholders=error.description_placeholders if error else None,
        )

    async def async_step_ha_sensors(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """A meter made of sensor entities: currents, or powers and a nominal voltage."""
        entry = self._get_entry()
        meter_id = self._meter_id
        values: dict[str, Any] = dict(self._stored())
        error: FormError | None = None
        if user_input is not None:
            values = _ha_sensors_values(user_input)
            error = _name_error(entry, meter_id, values["name"])
            if error is None:
                try:
                    config = HaSensorMeterConfig.from_dict(values)
                except HaSensorMeterConfigError as err:
                    error = FormError(err.key, placeholders=err.placeholders)
                except ConfigError:
                    error = FormError("invalid_meter")
                else:
                    return self._finish(config.to_dict())
        voltage = float(entry.options.get(CONF_NOMINAL_VOLTAGE, DEFAULT_NOMINAL_VOLTAGE))
        return self.async_show_form(
            step_id=METER_KIND_HA_SENSORS,
            data_schema=_ha_sensors_schema(values, voltage),
            errors=error.errors if error else {},
            description_placeholders=error.description_placeholders if error else None,
        )
