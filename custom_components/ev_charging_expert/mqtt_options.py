"""The MQTT section of the options form (export, topic prefix, rate, control switches)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.mqtt import valid_publish_topic
from homeassistant.data_entry_flow import section
from homeassistant.helpers import config_validation as cv
import voluptuous as vol

from .evcore.export.exporter import DEFAULT_MIN_INTERVAL, DEFAULT_PREFIX
from .mqtt_export import (
    CONF_ALLOW_CONTROL,
    CONF_ALLOW_REMOTE_START_STOP,
    CONF_EXPORT,
    CONF_MIN_INTERVAL,
    CONF_MQTT,
    CONF_PREFIX,
)

if TYPE_CHECKING:
    from collections.abc import Mapping


def check_mqtt_options(user_input: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The options to store (prefix tidied) and the form's errors.

    The prefix is checked here, not in the schema: the form's schema must stay serialisable.
    """
    section_input = user_input.get(CONF_MQTT)
    if not isinstance(section_input, dict):
        return user_input, {}
    prefix = str(section_input.get(CONF_PREFIX, DEFAULT_PREFIX)).strip().rstrip("/")
    try:
        prefix = valid_publish_topic(prefix)
    except vol.Invalid:
        return user_input, {"base": "invalid_mqtt_prefix"}
    if not prefix:
        return user_input, {"base": "invalid_mqtt_prefix"}
    return {**user_input, CONF_MQTT: {**section_input, CONF_PREFIX: prefix}}, {}


def mqtt_options_schema(options: Mapping[str, Any]) -> dict[Any, Any]:
    """One collapsed section, keyed `mqtt` in the options; defaults: everything off."""
    current: Mapping[str, Any] = options.get(CONF_MQTT) or {}
    fields = vol.Schema(
        {
            vol.Required(CONF_EXPORT, default=current.get(CONF_EXPORT, False)): cv.boolean,
            vol.Required(CONF_PREFIX, default=current.get(CONF_PREFIX, DEFAULT_PREFIX)): cv.string,
            vol.Required(
                CONF_MIN_INTERVAL,
                default=current.get(CONF_MIN_INTERVAL, DEFAULT_MIN_INTERVAL),
            ): vol.All(vol.Coerce(float), vol.Range(min=0.1, max=3600)),
            vol.Required(
                CONF_ALLOW_CONTROL, default=current.get(CONF_ALLOW_CONTROL, False)
            ): cv.boolean,
            vol.Required(
                CONF_ALLOW_REMOTE_START_STOP,
                default=current.get(CONF_ALLOW_REMOTE_START_STOP, False),
            ): cv.boolean,
        }
    )
    # A default for the section: a client that leaves it out keeps the MQTT settings' defaults.
    return {
        vol.Required(CONF_MQTT, default={}): section(
            fields, {"collapsed": not current.get(CONF_EXPORT)}
        )
    }
