"""Config flow: where the central system listens and how it treats new chargers."""

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
    CONF_SHED_PRIORITY,
    CONF_SSL_CERTFILE,
    CONF_SSL_KEYFILE,
    CONF_ZONE_NAME,
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_HOST,
    DEFAULT_NOMINAL_VOLTAGE,
    DEFAULT_PORT,
    DEFAULT_REEVALUATION_MINUTES,
    DOMAIN,
    NO_PARENT,
    SUBENTRY_ZONE,
)
from .evcore.allocation.model import MinimumStandard, ShedPriority
from .evcore.config import MAX_CURRENT, ZoneMode, validate_zones
from .evcore.errors import ConfigError
from .evcore.model import NewChargerPolicy
from .hub import build_ssl_context, zone_from_subentry, zones_from_entry
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
                default=defaults.get(CONF_NEW_CHARGER_POLICY, NewChargerPolicy.ACCEPT),
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
        """Zones are subentries: one per switchboard."""
        return {SUBENTRY_ZONE: ZoneSubentryFlow}

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
        return None

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
            }
        )
