"""Config flow: where the central system listens; options: the site's load-management settings."""

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
)
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import callback
from homeassistant.helpers import config_validation as cv, selector
import voluptuous as vol

from .const import (
    CONF_CONSUMPTION_OPTIMISATION,
    CONF_HEARTBEAT_INTERVAL,
    CONF_MINIMUM_STANDARD,
    CONF_NEW_CHARGER_POLICY,
    CONF_NOMINAL_VOLTAGE,
    CONF_REEVALUATION_MINUTES,
    CONF_SAFETY_MARGIN,
    CONF_SHED_PRIORITY,
    CONF_SSL_CERTFILE,
    CONF_SSL_KEYFILE,
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_HOST,
    DEFAULT_NOMINAL_VOLTAGE,
    DEFAULT_PORT,
    DEFAULT_REEVALUATION_MINUTES,
    DEFAULT_SAFETY_MARGIN,
    DOMAIN,
    SUBENTRY_DIGITAL_INPUT,
    SUBENTRY_METER,
    SUBENTRY_METER_MODEL,
    SUBENTRY_TOU_PERIOD,
    SUBENTRY_ZONE,
)
from .entry_data import build_ssl_context
from .evcore.allocation.model import MinimumStandard, ShedPriority
from .evcore.model import NewChargerPolicy
from .subentry_flows.common import translated_select
from .subentry_flows.meter import MeterSubentryFlow
from .subentry_flows.meter_model import MeterModelSubentryFlow
from .subentry_flows.rules import (
    DigitalInputSubentryFlow,
    TouPeriodSubentryFlow,
    rules_option_fields,
)
from .subentry_flows.zone import ZoneSubentryFlow

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
            SUBENTRY_TOU_PERIOD: TouPeriodSubentryFlow,
            SUBENTRY_DIGITAL_INPUT: DigitalInputSubentryFlow,
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
                ): translated_select([m.value for m in MinimumStandard], CONF_MINIMUM_STANDARD),
                vol.Required(
                    CONF_SHED_PRIORITY,
                    default=options.get(CONF_SHED_PRIORITY, ShedPriority.ENERGY),
                ): translated_select([p.value for p in ShedPriority], CONF_SHED_PRIORITY),
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
                vol.Required(
                    CONF_CONSUMPTION_OPTIMISATION,
                    default=options.get(CONF_CONSUMPTION_OPTIMISATION, False),
                ): selector.BooleanSelector(),
                **rules_option_fields(options),
            }
        )
        return self.async_show_form(step_id="init", data_schema=schema)
