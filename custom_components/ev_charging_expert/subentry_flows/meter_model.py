"""Subentry flow of a custom meter model (a register map)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import SOURCE_RECONFIGURE, ConfigSubentryFlow, SubentryFlowResult
from homeassistant.data_entry_flow import section
import voluptuous as vol

from ..const import (
    CONF_ADDRESS,
    CONF_FORMAT,
    CONF_INVALID,
    CONF_MAX_GAP,
    CONF_NUMBERING,
    CONF_REGISTER_TYPE,
    CONF_SCALE,
    CONF_WORD_ORDER,
)
from ..entry_data import models_from_entry, rename_model_in_meters
from ..evcore.errors import ConfigError
from ..evcore.meters import (
    Numbering,
    Quantity,
    RegisterFormat,
    RegisterType,
    WordOrder,
)
from ..evcore.meters.catalog import model_from_data, model_to_data
from ..evcore.meters.models import CURRENTS, MAX_READ_GAP
from .common import FormError, plain_select, suggested, translated_select

if TYPE_CHECKING:
    from collections.abc import Mapping

    from homeassistant.config_entries import ConfigEntry

    from ..evcore.meters import MeterModel


def _register_section(quantity: Quantity, register: Mapping[str, Any]) -> section:
    return section(
        vol.Schema(
            {
                suggested(CONF_ADDRESS, register): vol.Coerce(int),
                vol.Required(
                    CONF_FORMAT, default=register.get(CONF_FORMAT, RegisterFormat.FLOAT32)
                ): plain_select([f.value for f in RegisterFormat]),
                vol.Required(
                    CONF_WORD_ORDER, default=register.get(CONF_WORD_ORDER, WordOrder.BIG)
                ): translated_select([w.value for w in WordOrder], CONF_WORD_ORDER),
                vol.Required(
                    CONF_REGISTER_TYPE, default=register.get("type", RegisterType.HOLDING)
                ): translated_select([t.value for t in RegisterType], CONF_REGISTER_TYPE),
                vol.Required(CONF_SCALE, default=register.get(CONF_SCALE, 1.0)): vol.Coerce(float),
                suggested(CONF_INVALID, register): vol.Coerce(int),
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
            ): translated_select([n.value for n in Numbering], CONF_NUMBERING),
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


def _checked_model(
    entry: ConfigEntry, old_name: str | None, data: Mapping[str, Any]
) -> MeterModel | FormError:
    """The model the form describes, when it is valid and its name free (its old one is)."""
    try:
        model = model_from_data(data)
    except ConfigError:
        return FormError("invalid_model")
    registry, _ = models_from_entry(entry)
    if old_name is not None and old_name in registry.custom:
        registry.remove(old_name)
    try:
        registry.add(model)
    except ConfigError:
        # Valid, it was just built: only its name can clash, with a built-in or custom model.
        return FormError("name_taken", "name")
    return model


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
        error: FormError | None = None
        if user_input is not None:
            data = _model_data(user_input, data.get("notes"))
            old_name = entry.subentries[model_id].title if model_id else None
            model = _checked_model(entry, old_name, data)
            if isinstance(model, FormError):
                error = model
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
            errors=error.errors if error else {},
        )
