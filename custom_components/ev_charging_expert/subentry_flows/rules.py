"""Subentry flows of the operating rules: a time-of-use period, a digital input.

A period's timeslots are one text field ("Mon-Fri 07:00-12:00 14:00-19:30; Sat 08:00-12:00"),
parsed and checked against the other periods (overlaps) with the message naming what is wrong;
the zones where the period does not apply are picked from the zone list (default: it applies
everywhere). The time-of-use switch and the remote-setpoint settings are in the options.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigSubentryFlow, SubentryFlowResult
from homeassistant.helpers import entity_registry as er, selector
import voluptuous as vol

from ..const import (
    CONF_EXCLUDED_ZONES,
    CONF_INPUT_ENABLED,
    CONF_INPUT_ENTITY,
    CONF_INPUT_NAME,
    CONF_PERCENT,
    CONF_PERIOD_NAME,
    CONF_REMOTE_ENABLED,
    CONF_REMOTE_FALLBACK,
    CONF_REMOTE_HEARTBEAT,
    CONF_REMOTE_MIN_PERIOD,
    CONF_REMOTE_SOURCE,
    CONF_SLOTS,
    CONF_SOURCE_ENTITY,
    CONF_TOU_ENABLED,
    SUBENTRY_DIGITAL_INPUT,
    SUBENTRY_TOU_PERIOD,
)
from ..entry_data import zones_from_entry
from ..evcore.errors import ConfigError
from ..evcore.rules import DigitalInput, RemoteFallback, SetpointSource, TouConfig
from ..evcore.rules.inputs import validate_inputs
from ..rules_ha import DEFAULT_TOU_ENABLED, tou_period_data
from .common import FormError, translated_select

if TYPE_CHECKING:
    from collections.abc import Mapping

    from homeassistant.config_entries import ConfigEntry

INPUT_DOMAINS = ["binary_sensor", "input_boolean", "switch"]
SOURCE_DOMAINS = ["schedule", "binary_sensor", "input_boolean", "switch"]


def _percent() -> selector.NumberSelector:
    return selector.NumberSelector(
        selector.NumberSelectorConfig(
            min=0, max=100, step=1, unit_of_measurement="%", mode=selector.NumberSelectorMode.BOX
        )
    )


def _field_of(message: str) -> str:
    for key, field in (("slots", CONF_SLOTS), ("percent", CONF_PERCENT), ("name", "name")):
        if key in message.split(":", 1)[0]:
            return field
    return "base"


class _RulesSubentryFlow(ConfigSubentryFlow):
    subentry_type: str

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Add one."""
        return await self._form("user", user_input, None)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change one; applied at once."""
        return await self._form("reconfigure", user_input, self._reconfigure_subentry_id)

    async def _form(
        self, step_id: str, user_input: dict[str, Any] | None, subentry_id: str | None
    ) -> SubentryFlowResult:
        entry = self._get_entry()
        current: Mapping[str, Any] = entry.subentries[subentry_id].data if subentry_id else {}
        error: FormError | None = None
        if user_input is not None:
            data = self._data(user_input)
            error = self._check(entry, subentry_id, data)
            if error is None:
                title = str(data["name"])
                if subentry_id is None:
                    return self.async_create_entry(title=title, data=data)
                return self.async_update_and_abort(
                    entry, entry.subentries[subentry_id], title=title, data=data
                )
            current = data
        return self.async_show_form(
            step_id=step_id,
            data_schema=self._schema(entry, current),
            errors=error.errors if error else {},
            description_placeholders=(error.description_placeholders if error else None)
            or {"error": ""},
        )

    def _others(self, entry: ConfigEntry, subentry_id: str | None) -> list[Mapping[str, Any]]:
        return [
            sub.data
            for sid, sub in entry.subentries.items()
            if sub.subentry_type == self.subentry_type and sid != subentry_id
        ]

    def _data(self, user_input: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _check(
        self, entry: ConfigEntry, subentry_id: str | None, data: dict[str, Any]
    ) -> FormError | None:
        raise NotImplementedError

    def _schema(self, entry: ConfigEntry, current: Mapping[str, Any]) -> vol.Schema:
        raise NotImplementedError


class TouPeriodSubentryFlow(_RulesSubentryFlow):
    """Add or change a time-of-use period."""

    subentry_type = SUBENTRY_TOU_PERIOD

    def _data(self, user_input: dict[str, Any]) -> dict[str, Any]:
        return {
            CONF_PERIOD_NAME: str(user_input[CONF_PERIOD_NAME]).strip(),
            CONF_PERCENT: float(user_input[CONF_PERCENT]),
            CONF_SLOTS: str(user_input.get(CONF_SLOTS) or "").strip(),
            CONF_SOURCE_ENTITY: user_input.get(CONF_SOURCE_ENTITY) or None,
            CONF_EXCLUDED_ZONES: list(user_input.get(CONF_EXCLUDED_ZONES) or []),
        }

    def _check(
        self, entry: ConfigEntry, subentry_id: str | None, data: dict[str, Any]
    ) -> FormError | None:
        periods = [tou_period_data(d) for d in self._others(entry, subentry_id)]
        periods.append(tou_period_data(data))
        try:
            TouConfig.from_dict({"enabled": True, "periods": periods})
        except ConfigError as err:
            message = str(err).replace(f"periods[{len(periods) - 1}].", "")
            return FormError("invalid_period", _field_of(message), {"error": message})
        return None

    def _schema(self, entry: ConfigEntry, current: Mapping[str, Any]) -> vol.Schema:
        zones, _ = zones_from_entry(entry)
        options = [
            selector.SelectOptionDict(value=z.zone_id, label=z.name)
            for z in sorted(zones.values(), key=lambda z: z.name.casefold())
        ]
        return vol.Schema(
            {
                vol.Required(CONF_PERIOD_NAME, default=current.get(CONF_PERIOD_NAME, "")): str,
                vol.Required(CONF_PERCENT, default=current.get(CONF_PERCENT, 50)): _percent(),
                vol.Optional(
                    CONF_SLOTS, description={"suggested_value": current.get(CONF_SLOTS)}
                ): selector.TextSelector(selector.TextSelectorConfig(multiline=True)),
                vol.Optional(
                    CONF_SOURCE_ENTITY,
                    description={"suggested_value": current.get(CONF_SOURCE_ENTITY)},
                ): selector.EntitySelector(selector.EntitySelectorConfig(domain=SOURCE_DOMAINS)),
                vol.Optional(
                    CONF_EXCLUDED_ZONES, default=list(current.get(CONF_EXCLUDED_ZONES) or [])
                ): selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=options, multiple=True, mode=selector.SelectSelectorMode.LIST
                    )
                ),
            }
        )


class DigitalInputSubentryFlow(_RulesSubentryFlow):
    """Add or change a digital input (an HA entity that cuts every zone when on)."""

    subentry_type = SUBENTRY_DIGITAL_INPUT

    def _data(self, user_input: dict[str, Any]) -> dict[str, Any]:
        return {
            CONF_INPUT_NAME: str(user_input[CONF_INPUT_NAME]).strip(),
            CONF_INPUT_ENTITY: user_input[CONF_INPUT_ENTITY],
            CONF_PERCENT: float(user_input[CONF_PERCENT]),
            CONF_INPUT_ENABLED: bool(user_input.get(CONF_INPUT_ENABLED, True)),
        }

    def _check(
        self, entry: ConfigEntry, subentry_id: str | None, data: dict[str, Any]
    ) -> FormError | None:
        entity_id = data[CONF_INPUT_ENTITY]
        known = self.hass.states.get(entity_id) is not None or (
            er.async_get(self.hass).async_get(entity_id) is not None
        )
        if not known:
            return FormError("entity_not_found", CONF_INPUT_ENTITY, {"entity_id": entity_id})
        inputs = [
            DigitalInput(str(d.get(CONF_INPUT_NAME, "")), float(d.get(CONF_PERCENT, 0)))
            for d in self._others(entry, subentry_id)
        ]
        inputs.append(DigitalInput(data[CONF_INPUT_NAME], data[CONF_PERCENT]))
        try:
            validate_inputs(inputs)
        except ConfigError as err:
            message = str(err)
            return FormError("invalid_input", _field_of(message), {"error": message})
        return None

    def _schema(self, entry: ConfigEntry, current: Mapping[str, Any]) -> vol.Schema:
        return vol.Schema(
            {
                vol.Required(CONF_INPUT_NAME, default=current.get(CONF_INPUT_NAME, "")): str,
                vol.Required(
                    CONF_INPUT_ENTITY, default=current.get(CONF_INPUT_ENTITY) or vol.UNDEFINED
                ): selector.EntitySelector(selector.EntitySelectorConfig(domain=INPUT_DOMAINS)),
                vol.Required(CONF_PERCENT, default=current.get(CONF_PERCENT, 0)): _percent(),
                vol.Required(
                    CONF_INPUT_ENABLED, default=current.get(CONF_INPUT_ENABLED, True)
                ): bool,
            }
        )


def rules_option_fields(options: Mapping[str, Any]) -> dict[Any, Any]:
    """The site options of the rules: the time-of-use switch and remote setpoints."""
    return {
        vol.Required(
            CONF_TOU_ENABLED, default=options.get(CONF_TOU_ENABLED, DEFAULT_TOU_ENABLED)
        ): bool,
        vol.Required(CONF_REMOTE_ENABLED, default=options.get(CONF_REMOTE_ENABLED, False)): bool,
        vol.Required(
            CONF_REMOTE_SOURCE, default=options.get(CONF_REMOTE_SOURCE, SetpointSource.HA.value)
        ): translated_select([s.value for s in SetpointSource], CONF_REMOTE_SOURCE),
        vol.Required(
            CONF_REMOTE_MIN_PERIOD, default=options.get(CONF_REMOTE_MIN_PERIOD, 60)
        ): vol.All(vol.Coerce(int), vol.Range(min=0, max=86400)),
        vol.Required(
            CONF_REMOTE_HEARTBEAT, default=options.get(CONF_REMOTE_HEARTBEAT, 600)
        ): vol.All(vol.Coerce(int), vol.Range(min=10, max=86400)),
        vol.Required(
            CONF_REMOTE_FALLBACK,
            default=options.get(CONF_REMOTE_FALLBACK, RemoteFallback.DEGRADED.value),
        ): translated_select([f.value for f in RemoteFallback], CONF_REMOTE_FALLBACK),
    }
