"""Config flow: where the central system listens; zones, power meters and meter models."""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers import config_validation as cv, selector
import voluptuous as vol

from .const import (
    CONF_DEGRADED_SETPOINT,
    CONF_HEARTBEAT_INTERVAL,
    CONF_MAX_CURRENT,
    CONF_MINIMUM_STANDARD,
    CONF_MODE,
    CONF_NEW_CHARGER_POLICY,
    CONF_NOMINAL_VOLTAGE,
    CONF_PARENT,
    CONF_REEVALUATION_MINUTES,
    CONF_SAFETY_MARGIN,
    CONF_SHED_PRIORITY,
    CONF_SSL_CERTFILE,
    CONF_SSL_KEYFILE,
    CONF_ZONE_NAME,
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_HOST,
    DEFAULT_NOMINAL_VOLTAGE,
    DEFAULT_PORT,
    DEFAULT_REEVALUATION_MINUTES,
    DEFAULT_SAFETY_MARGIN,
    DOMAIN,
    NO_PARENT,
    SUBENTRY_ZONE,
)
from .evcore.allocation.model import MinimumStandard, ShedPriority
from .evcore.clock import SystemClock
from .evcore.config import MAX_CURRENT, ZoneConfig, ZoneMode, validate_zones
from .evcore.errors import ConfigError
from .evcore.meters import (
    MeterConfig,
    MeterPool,
    MeterProtocol,
    Numbering,
    Parity,
    Quantity,
    RegisterFormat,
    RegisterType,
    SerialSettings,
    WordOrder,
)
from .evcore.meters.catalog import model_from_data, model_to_data
from .evcore.meters.config import (
    BAUDRATES,
    DEFAULT_POLLING_PERIOD,
    DEFAULT_PORT as DEFAULT_MODBUS_PORT,
    DEFAULT_SLAVE_ID,
    DEFAULT_TIMEOUT,
)
from .evcore.meters.external import DEFAULT_MAX_AGE
from .evcore.meters.models import CURRENTS, MAX_READ_GAP
from .evcore.model import NewChargerPolicy
from .hub import (
    build_ssl_context,
    meter_subentries,
    models_from_entry,
    rename_model_in_meters,
    zone_from_subentry,
    zone_meter_ids,
    zones_from_entry,
)
from .power_meters import (
    CONF_CURRENTS,
    CONF_ENERGY,
    CONF_MAX_AGE,
    CONF_METER,
    CONF_METER_KIND,
    CONF_POWER_TOTAL,
    CONF_POWERS,
    CONF_REPORTING_ONLY,
    CONF_VOLTAGE,
    METER_KIND_HA_SENSORS,
    METER_KIND_MODBUS,
    NO_METER,
    SUBENTRY_METER,
    SUBENTRY_METER_MODEL,
    HaSensorMeterConfig,
)
from .select import UNASSIGNED

if TYPE_CHECKING:
    from collections.abc import Mapping


def _schema(defaults: Mapping[str, Any]) -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(CONF_HOST, default=defaults.get(CONF_HOST, DEFAULT_HOST)): cv.string,
            vol.Required(CONF_PORT, default=defaults.get(CONF_PORT, DEFAULT_PORT)): vol.All(
                vol.Coerce(int), vol.Range(min=1, max=65535)
            ),
            vol.Required(
                CONF_NEW_CHARGER_POLICY,
                default=defaults.get(CONF_NEW_CHARGER_POLICY, NewChargerPolicy.PENDING),
            ): selector.SelectSelector(
                selector.SelectSelectorConfig(
                    options=[p.value for p in NewChargerPolicy],
                    translation_key=CONF_NEW_CHARGER_POLICY,
                    mode=selector.SelectSelectorMode.LIST,
                )
            ),
            vol.Required(
                CONF_HEARTBEAT_INTERVAL,
                default=defaults.get(CONF_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_INTERVAL),
            ): vol.All(vol.Coerce(int), vol.Range(min=10, max=86400)),
            vol.Optional(
                CONF_SSL_CERTFILE,
                description={"suggested_value": defaults.get(CONF_SSL_CERTFILE)},
            ): cv.string,
            vol.Optional(
                CONF_SSL_KEYFILE,
                description={"suggested_value": defaults.get(CONF_SSL_KEYFILE)},
            ): cv.string,
        }
    )


def _port_is_free(host: str, port: int) -> bool:
    """Try to bind the port the way the server will (blocking: run in the executor)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class EvChargingConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up (and reconfigure) the central system."""

    VERSION = 1

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> SiteSettingsFlow:
        """Site load-management settings."""
        return SiteSettingsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Zones (one per switchboard), power meters and custom meter models."""
        return {
            SUBENTRY_ZONE: ZoneSubentryFlow,
            SUBENTRY_METER: MeterSubentryFlow,
            SUBENTRY_METER_MODEL: MeterModelSubentryFlow,
        }

    async def _validate(
        self, user_input: dict[str, Any], current: Mapping[str, Any] | None
    ) -> dict[str, str]:
        errors: dict[str, str] = {}
        certfile = user_input.get(CONF_SSL_CERTFILE) or None
        keyfile = user_input.get(CONF_SSL_KEYFILE) or None
        if bool(certfile) != bool(keyfile):
            errors["base"] = "tls_pair"
        elif certfile and keyfile:
            try:
                await self.hass.async_add_executor_job(build_ssl_context, certfile, keyfile)
            except (OSError, ssl.SSLError):
                errors["base"] = "tls_invalid"
        # Our own server holds the current port, on whatever address it listens: a bind test
        # of that port on a new address would collide with ourselves, so only a new port is
        # checked.
        unchanged = current is not None and current.get(CONF_PORT) == user_input[CONF_PORT]
        if not unchanged and not await self.hass.async_add_executor_job(
            _port_is_free, user_input[CONF_HOST], user_input[CONF_PORT]
        ):
            errors[CONF_PORT] = "port_in_use"
        return errors

    @staticmethod
    def _clean(user_input: dict[str, Any]) -> dict[str, Any]:
        data = dict(user_input)
        for key in (CONF_SSL_CERTFILE, CONF_SSL_KEYFILE):
            if not data.get(key):
                data.pop(key, None)
        return data

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask where to listen."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = await self._validate(user_input, None)
            if not errors:
                return self.async_create_entry(
                    title="EV Charging Expert", data=self._clean(user_input)
                )
        return self.async_show_form(
            step_id="user", data_schema=_schema(user_input or {}), errors=errors
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the listening address, TLS or policies; the entry reloads."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = await self._validate(user_input, entry.data)
            if not errors:
                return self.async_update_reload_and_abort(entry, data=self._clean(user_input))
        return self.async_show_form(
            step_id=SOURCE_RECONFIGURE,
            data_schema=_schema(user_input or entry.data),
            errors=errors,
        )


def _select(options: list[str], key: str) -> selector.SelectSelector:
    return selector.SelectSelector(
        selector.SelectSelectorConfig(
            options=options, translation_key=key, mode=selector.SelectSelectorMode.DROPDOWN
        )
    )


def _plain_select(options: list[str]) -> selector.SelectSelector:
    """A dropdown of values shown as they are (names, numbers)."""
    return selector.SelectSelector(
        selector.SelectSelectorConfig(options=options, mode=selector.SelectSelectorMode.DROPDOWN)
    )


def _amps(maximum: float = MAX_CURRENT) -> selector.NumberSelector:
    return selector.NumberSelector(
        selector.NumberSelectorConfig(
            min=0,
            max=maximum,
            step=0.1,
            unit_of_measurement="A",
            mode=selector.NumberSelectorMode.BOX,
        )
    )


class SiteSettingsFlow(OptionsFlow):
    """Minimum current standard, shedding priority, re-evaluation period, voltage."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form; applied live."""
        if user_input is not None:
            return self.async_create_entry(data=user_input)
        options = self.config_entry.options
        schema = vol.Schema(
            {
                vol.Required(
                    CONF_MINIMUM_STANDARD,
                    default=options.get(CONF_MINIMUM_STANDARD, MinimumStandard.IEC_61851),
                ): _select([m.value for m in MinimumStandard], CONF_MINIMUM_STANDARD),
                vol.Required(
                    CONF_SHED_PRIORITY,
                    default=options.get(CONF_SHED_PRIORITY, ShedPriority.ENERGY),
                ): _select([p.value for p in ShedPriority], CONF_SHED_PRIORITY),
                vol.Required(
                    CONF_REEVALUATION_MINUTES,
                    default=options.get(CONF_REEVALUATION_MINUTES, DEFAULT_REEVALUATION_MINUTES),
                ): vol.All(vol.Coerce(int), vol.Range(min=1, max=240)),
                vol.Required(
                    CONF_NOMINAL_VOLTAGE,
                    default=options.get(CONF_NOMINAL_VOLTAGE, DEFAULT_NOMINAL_VOLTAGE),
                ): vol.All(vol.Coerce(int), vol.Range(min=100, max=260)),
                vol.Required(
                    CONF_SAFETY_MARGIN,
                    default=options.get(CONF_SAFETY_MARGIN, DEFAULT_SAFETY_MARGIN),
                ): vol.All(vol.Coerce(float), vol.Range(min=0, max=50)),
            }
        )
        return self.async_show_form(step_id="init", data_schema=schema)


class ZoneSubentryFlow(ConfigSubentryFlow):
    """Add or change a zone (switchboard)."""

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Add a zone."""
        return await self._zone_form("user", user_input, None)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change a zone; the allocation follows at once."""
        return await self._zone_form("reconfigure", user_input, self._reconfigure_subentry_id)

    async def _zone_form(
        self, step_id: str, user_input: dict[str, Any] | None, zone_id: str | None
    ) -> SubentryFlowResult:
        entry = self._get_entry()
        current = entry.subentries[zone_id].data if zone_id else {}
        errors: dict[str, str] = {}
        placeholders = {"error": ""}
        if user_input is not None:
            data = {
                CONF_ZONE_NAME: str(user_input[CONF_ZONE_NAME]).strip(),
                CONF_PARENT: user_input.get(CONF_PARENT, NO_PARENT),
                CONF_MAX_CURRENT: float(user_input[CONF_MAX_CURRENT]),
                CONF_MODE: user_input[CONF_MODE],
                CONF_DEGRADED_SETPOINT: float(user_input.get(CONF_DEGRADED_SETPOINT, 0.0)),
            }
            if (meter := user_input.get(CONF_METER, NO_METER)) not in ("", NO_METER):
                data[CONF_METER] = meter
            error = self._check(entry, zone_id, data)
            if error is None:
                if zone_id is None:
                    return self.async_create_entry(title=data[CONF_ZONE_NAME], data=data)
                return self.async_update_and_abort(
                    entry, entry.subentries[zone_id], title=data[CONF_ZONE_NAME], data=data
                )
            errors["base"] = "invalid_zone"
            placeholders["error"] = error
            current = data
        return self.async_show_form(
            step_id=step_id,
            data_schema=self._schema(entry, zone_id, current),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _check(self, entry: ConfigEntry, zone_id: str | None, data: dict[str, Any]) -> str | None:
        """Validate the whole tree with this zone added or changed; None when it is fine."""
        if data[CONF_ZONE_NAME].casefold() == UNASSIGNED:
            return f"{UNASSIGNED!r} is reserved for stations that are in no zone"
        zones, _ = zones_from_entry(entry)
        key = zone_id or "__new__"
        zones[key] = zone_from_subentry(key, data)
        try:
            validate_zones(zones.values())
        except ConfigError as err:
            return str(err)
        parent = zones[key].parent_id
        if parent is not None:
            hub = getattr(entry, "runtime_data", None)
            stations = hub.site.stations.values() if hub is not None else ()
            holding = sorted(s.station_id for s in stations if s.config.zone_id == parent)
            if holding:
                return (
                    f"zone {zones[parent].name!r} holds stations ({', '.join(holding[:5])}); "
                    "stations go in zones without sub-zones: move them first"
                )
        return _zone_meter_error(entry, zone_id, zones[key], data.get(CONF_METER))

    def _schema(self, entry: ConfigEntry, zone_id: str | None, current: Any) -> vol.Schema:
        zones, _ = zones_from_entry(entry)
        # A zone cannot hang below itself or one of its own sub-zones.
        excluded = {zone_id} if zone_id else set()
        changed = True
        while changed:
            changed = False
            for zone in zones.values():
                if zone.parent_id in excluded and zone.zone_id not in excluded:
                    excluded.add(zone.zone_id)
                    changed = True
        parents = [
            selector.SelectOptionDict(value=z.zone_id, label=z.name)
            for z in sorted(zones.values(), key=lambda z: z.name.casefold())
            if z.zone_id not in excluded
        ]
        return vol.Schema(
            {
                vol.Required(CONF_ZONE_NAME, default=current.get(CONF_ZONE_NAME, "")): str,
                vol.Required(
                    CONF_PARENT, default=current.get(CONF_PARENT) or NO_PARENT
                ): selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=[selector.SelectOptionDict(value=NO_PARENT, label="—"), *parents],
                        mode=selector.SelectSelectorMode.DROPDOWN,
                    )
                ),
                vol.Required(
                    CONF_MAX_CURRENT, default=current.get(CONF_MAX_CURRENT, 32.0)
                ): _amps(),
                vol.Required(CONF_MODE, default=current.get(CONF_MODE, ZoneMode.STATIC)): _select(
                    [m.value for m in ZoneMode], CONF_MODE
                ),
                vol.Required(
                    CONF_DEGRADED_SETPOINT, default=current.get(CONF_DEGRADED_SETPOINT, 0.0)
                ): _amps(),
                **_zone_meter_field(entry, zone_id, current.get(CONF_METER)),
            }
        )


def _zone_meter_field(
    entry: ConfigEntry, zone_id: str | None, current: str | None
) -> dict[Any, Any]:
    """The meter select: none, or a meter that may drive a zone and drives no other one."""
    taken = {m for z, m in zone_meter_ids(entry).items() if z != zone_id}
    meters = [
        selector.SelectOptionDict(value=meter_id, label=subentry.title)
        for meter_id, subentry in sorted(
            meter_subentries(entry).items(), key=lambda item: item[1].title.casefold()
        )
        if not subentry.data.get(CONF_REPORTING_ONLY) and meter_id not in taken
    ]
    default = current if current in {m["value"] for m in meters} else NO_METER
    return {
        vol.Optional(CONF_METER, default=default): selector.SelectSelector(
            selector.SelectSelectorConfig(
                options=[selector.SelectOptionDict(value=NO_METER, label="—"), *meters],
                mode=selector.SelectSelectorMode.DROPDOWN,
            )
        )
    }


def _zone_meter_error(
    entry: ConfigEntry, zone_id: str | None, zone: ZoneConfig, meter_id: str | None
) -> str | None:
    """Zone <-> meter rules; None when they hold.

    A dynamic zone needs a meter, a static zone takes none, a reporting-only meter drives no
    zone, and one meter drives at most one zone (its measurement holds one zone's load).
    """
    if zone.mode is ZoneMode.STATIC:
        return (
            "a static zone has a fixed budget and takes no power meter: choose none, or make "
            "the zone dynamic"
            if meter_id
            else None
        )
    meter = meter_subentries(entry).get(meter_id) if meter_id else None
    if meter is None:
        return "a dynamic zone needs a power meter: add one (Power meter), then choose it here"
    if meter.data.get(CONF_REPORTING_ONLY):
        return f"power meter {meter.title!r} is for reporting only and cannot drive a zone"
    other = next(
        (z for z, m in zone_meter_ids(entry).items() if m == meter_id and z != zone_id), None
    )
    if other is not None:
        return (
            f"power meter {meter.title!r} already drives zone "
            f"{entry.subentries[other].title!r}: one meter drives at most one zone"
        )
    return None


# ---------------------------------------------------------------------------- power meters
CONF_PROTOCOL = "protocol"
CONF_SLAVE_ID = "slave_id"
CONF_MODEL = "model"
CONF_POLLING_PERIOD = "polling_period"
CONF_TIMEOUT = "timeout"
CONF_SERIAL = "serial"
CONF_SERIAL_PORT = "serial_port"
CONF_BAUDRATE = "baudrate"
CONF_PARITY = "parity"
CONF_STOPBITS = "stopbits"
SECTION_CURRENTS = "currents"
SECTION_POWERS = "powers"
SECTION_TOTALS = "totals"


def _meter_name_error(entry: ConfigEntry, meter_id: str | None, name: str) -> str | None:
    for other_id, other in meter_subentries(entry).items():
        if other_id != meter_id and other.title.strip().casefold() == name.casefold():
            return f"a power meter called {other.title!r} already exists"
    return None


def _reporting_only_error(entry: ConfigEntry, meter_id: str | None, name: str) -> str | None:
    zone_id = next((z for z, m in zone_meter_ids(entry).items() if m == meter_id), None)
    if meter_id is None or zone_id is None:
        return None
    return (
        f"power meter {name!r} drives zone {entry.subentries[zone_id].title!r}: choose another "
        "meter for the zone before making this one reporting only"
    )


def _pool_error(entry: ConfigEntry, meter_id: str | None, config: MeterConfig) -> str | None:
    """Whether the meter's model exists and it can share its gateway with the other meters."""
    registry, _ = models_from_entry(entry)
    # Never started: nothing connects, it only checks the model and the gateway sharing.
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
    except ConfigError as err:
        return str(err)
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
            vol.Required(CONF_MODEL, default=values.get(CONF_MODEL, models[0])): _plain_select(
                models
            ),
            vol.Required(CONF_PROTOCOL, default=protocol): _select(
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
                        ): _plain_select([str(b) for b in BAUDRATES]),
                        vol.Required(
                            CONF_PARITY, default=str(values.get(CONF_PARITY, Parity.EVEN))
                        ): _select([p.value for p in Parity], CONF_PARITY),
                        vol.Required(
                            CONF_STOPBITS, default=str(values.get(CONF_STOPBITS, 1))
                        ): _plain_select(["1", "2"]),
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


def _suggested(key: str, values: Mapping[str, Any]) -> vol.Optional:
    return vol.Optional(key, description={"suggested_value": values.get(key)})


def _ha_sensors_schema(values: Mapping[str, Any], voltage: float) -> vol.Schema:
    powers = any(values.get(k) for k in CONF_POWERS)
    power_fields: dict[vol.Marker, Any] = {
        _suggested(k, values): _sensor("power") for k in CONF_POWERS
    }
    return vol.Schema(
        {
            vol.Required("name", default=values.get("name", "")): str,
            vol.Required(SECTION_CURRENTS): section(
                vol.Schema({_suggested(k, values): _sensor("current") for k in CONF_CURRENTS}),
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
                        _suggested(CONF_POWER_TOTAL, values): _sensor("power"),
                        _suggested(CONF_ENERGY, values): _sensor("energy"),
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
        errors: dict[str, str] = {}
        placeholders = {"error": ""}
        if user_input is not None:
            try:
                config = _modbus_config(meter_id, user_input)
            except ConfigError as err:
                error: str | None = str(err)
            else:
                error = (
                    _meter_name_error(entry, meter_id, config.name)
                    or (
                        _reporting_only_error(entry, meter_id, config.name)
                        if config.reporting_only
                        else None
                    )
                    or _pool_error(entry, meter_id, config)
                )
                if error is None:
                    return self._finish({CONF_METER_KIND: METER_KIND_MODBUS, **config.to_dict()})
            errors["base"] = "invalid_meter"
            placeholders["error"] = error or ""
            values = _modbus_values(user_input)
        registry, _ = models_from_entry(entry)
        return self.async_show_form(
            step_id=METER_KIND_MODBUS,
            data_schema=_modbus_schema(values, registry.names()),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_ha_sensors(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """A meter made of sensor entities: currents, or powers and a nominal voltage."""
        entry = self._get_entry()
        meter_id = self._meter_id
        values: dict[str, Any] = dict(self._stored())
        errors: dict[str, str] = {}
        placeholders = {"error": ""}
        if user_input is not None:
            values = _ha_sensors_values(user_input)
            try:
                config = HaSensorMeterConfig.from_dict(values)
            except ConfigError as err:
                error: str | None = str(err)
            else:
                error = _meter_name_error(entry, meter_id, config.name)
                if error is None:
                    return self._finish(config.to_dict())
            errors["base"] = "invalid_meter"
            placeholders["error"] = error or ""
        voltage = float(entry.options.get(CONF_NOMINAL_VOLTAGE, DEFAULT_NOMINAL_VOLTAGE))
        return self.async_show_form(
            step_id=METER_KIND_HA_SENSORS,
            data_schema=_ha_sensors_schema(values, voltage),
            errors=errors,
            description_placeholders=placeholders,
        )


# ---------------------------------------------------------------------------- meter models
CONF_NUMBERING = "numbering"
CONF_MAX_GAP = "max_gap"
CONF_ADDRESS = "address"
CONF_FORMAT = "format"
CONF_WORD_ORDER = "word_order"
CONF_REGISTER_TYPE = "register_type"
CONF_SCALE = "scale"
CONF_INVALID = "invalid"


def _register_section(quantity: Quantity, register: Mapping[str, Any]) -> section:
    return section(
        vol.Schema(
            {
                _suggested(CONF_ADDRESS, register): vol.Coerce(int),
                vol.Required(
                    CONF_FORMAT, default=register.get(CONF_FORMAT, RegisterFormat.FLOAT32)
                ): _plain_select([f.value for f in RegisterFormat]),
                vol.Required(
                    CONF_WORD_ORDER, default=register.get(CONF_WORD_ORDER, WordOrder.BIG)
                ): _select([w.value for w in WordOrder], CONF_WORD_ORDER),
                vol.Required(
                    CONF_REGISTER_TYPE, default=register.get("type", RegisterType.HOLDING)
                ): _select([t.value for t in RegisterType], CONF_REGISTER_TYPE),
                vol.Required(CONF_SCALE, default=register.get(CONF_SCALE, 1.0)): vol.Coerce(float),
                _suggested(CONF_INVALID, register): vol.Coerce(int),
            }
        ),
        # The three currents are required: open; the rest only when the model has them.
        {"collapsed": quantity not in CURRENTS and not register},
    )


def _model_schema(data: Mapping[str, Any]) -> vol.Schema:
    registers = data.get("registers") or {}
    return vol.Schema(
        {
            vol.Required("name", default=data.get("name", "")): str,
            vol.Required(
                CONF_NUMBERING, default=data.get(CONF_NUMBERING, Numbering.REGISTER)
            ): _select([n.value for n in Numbering], CONF_NUMBERING),
            **{
                vol.Required(q.value): _register_section(q, registers.get(q.value) or {})
                for q in Quantity
            },
            vol.Required(CONF_MAX_GAP, default=data.get(CONF_MAX_GAP, 0)): vol.All(
                vol.Coerce(int), vol.Range(min=0, max=MAX_READ_GAP)
            ),
        }
    )


def _model_data(user_input: Mapping[str, Any], notes: str | None) -> dict[str, Any]:
    """A model in the JSON file's shape, from the form (a quantity without address is left out)."""
    registers: dict[str, Any] = {}
    for quantity in Quantity:
        values = user_input.get(quantity.value) or {}
        if values.get(CONF_ADDRESS) in (None, ""):
            continue
        register: dict[str, Any] = {
            CONF_ADDRESS: values[CONF_ADDRESS],
            CONF_FORMAT: values.get(CONF_FORMAT, RegisterFormat.FLOAT32),
            CONF_WORD_ORDER: values.get(CONF_WORD_ORDER, WordOrder.BIG),
            "type": values.get(CONF_REGISTER_TYPE, RegisterType.HOLDING),
            CONF_SCALE: values.get(CONF_SCALE, 1.0),
        }
        if values.get(CONF_INVALID) not in (None, ""):
            register[CONF_INVALID] = values[CONF_INVALID]
        registers[quantity.value] = register
    data: dict[str, Any] = {
        "name": str(user_input.get("name", "")).strip(),
        CONF_NUMBERING: user_input.get(CONF_NUMBERING, Numbering.REGISTER),
        CONF_MAX_GAP: user_input.get(CONF_MAX_GAP, 0),
        "registers": registers,
    }
    if notes:
        data["notes"] = notes
    return data


class MeterModelSubentryFlow(ConfigSubentryFlow):
    """Add or change a custom meter model (a register map)."""

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Add a model."""
        return await self.async_step_model()

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change a model; the meters that use it follow (also a new name)."""
        return await self.async_step_model()

    async def async_step_model(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """The model's name, numbering and one section per quantity."""
        entry = self._get_entry()
        model_id = self._reconfigure_subentry_id if self.source == SOURCE_RECONFIGURE else None
        data: Mapping[str, Any] = entry.subentries[model_id].data if model_id else {}
        errors: dict[str, str] = {}
        placeholders = {"error": ""}
        if user_input is not None:
            data = _model_data(user_input, data.get("notes"))
            registry, _ = models_from_entry(entry)
            old_name = entry.subentries[model_id].title if model_id else None
            try:
                model = model_from_data(data)
                if old_name is not None and old_name in registry.custom:
                    registry.remove(old_name)
                registry.add(model)
            except ConfigError as err:
                errors["base"] = "invalid_model"
                placeholders["error"] = str(err)
            else:
                stored = model_to_data(model)
                if model_id is None:
                    return self.async_create_entry(title=model.name, data=stored)
                if old_name is not None:
                    rename_model_in_meters(self.hass, entry, old_name, model.name)
                return self.async_update_and_abort(
                    entry, entry.subentries[model_id], title=model.name, data=stored
                )
        return self.async_show_form(
            step_id="model",
            data_schema=_model_schema(data),
            errors=errors,
            description_placeholders=placeholders,
        )
