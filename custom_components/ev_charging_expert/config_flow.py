"""Config flow: where the central system listens and how it treats new chargers."""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import SOURCE_RECONFIGURE, ConfigFlow, ConfigFlowResult
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.helpers import config_validation as cv, selector
import voluptuous as vol

from .const import (
    CONF_HEARTBEAT_INTERVAL,
    CONF_NEW_CHARGER_POLICY,
    CONF_SSL_CERTFILE,
    CONF_SSL_KEYFILE,
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DOMAIN,
)
from .evcore.model import NewChargerPolicy
from .hub import build_ssl_context

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
