"""MQTT export and commands through HA's own mqtt integration (never a client of our own).

The transport-free parts live in `evcore/export/` (documents, change detection, coalescing,
command checks); this module plugs them into `homeassistant.components.mqtt`:

- optional: with export off, or without the mqtt integration set up, nothing here touches MQTT;
  export on without MQTT raises a repair and the hub's "MQTT export" sensor says so;
- availability `online` while exporting, `offline` on unload and when HA stops cleanly (HA's
  client has its own last will, so a crash leaves `online`: watch HA's `homeassistant/status`
  too, docs/mqtt.md says how);
- states republished whenever the broker connection comes back (a broker without persistence
  forgets retained messages);
- commands subscribed only while "allow MQTT control" is on; every command gets a reply.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
import json
import logging
from typing import TYPE_CHECKING, Any

from homeassistant.components import mqtt
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_COMPONENT_LOADED, EVENT_HOMEASSISTANT_STOP
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.dispatcher import async_dispatcher_send

from .const import DOMAIN
from .evcore.export.commands import CommandHandler, CommandSettings
from .evcore.export.exporter import (
    DEFAULT_MIN_INTERVAL,
    DEFAULT_PREFIX,
    ExportSettings,
    StateExporter,
    Topics,
)
from .issues import clear_issue, raise_issue

if TYPE_CHECKING:
    from collections.abc import Mapping

    from homeassistant.components.mqtt.models import ReceiveMessage
    from homeassistant.config_entries import ConfigEntry

    from .evcore.controller import Controller

_LOGGER = logging.getLogger(__name__)

# Options: one section of the options form.
CONF_MQTT = "mqtt"
CONF_EXPORT = "export"
CONF_PREFIX = "prefix"
CONF_MIN_INTERVAL = "min_interval"
CONF_ALLOW_CONTROL = "allow_control"
CONF_ALLOW_REMOTE_START_STOP = "allow_remote_start_stop"

ISSUE_MQTT_MISSING = "mqtt_missing"
STOP_TIMEOUT = 5.0
"""Seconds the last messages (offline) may take on unload before we give up on them."""


def signal_mqtt(entry_id: str) -> str:
    """Dispatcher signal: the export's state or counters changed."""
    return f"{DOMAIN}_{entry_id}_mqtt"


@callback
def _is_mqtt(data: Mapping[str, Any]) -> bool:
    return data.get("component") == mqtt.DOMAIN


class MqttExportState(StrEnum):
    """What the hub's "MQTT export" sensor shows."""

    DISABLED = "disabled"
    MQTT_MISSING = "mqtt_missing"
    ONLINE = "online"
    BROKER_DISCONNECTED = "broker_disconnected"


@dataclass(frozen=True, slots=True)
class MqttOptions:
    """The MQTT section of the entry's options."""

    export: bool = False
    prefix: str = DEFAULT_PREFIX
    min_interval: float = DEFAULT_MIN_INTERVAL
    allow_control: bool = False
    allow_remote_start_stop: bool = False

    @classmethod
    def from_entry(cls, entry: ConfigEntry) -> MqttOptions:
        """Read the section (defaults when it was never saved)."""
        data: dict[str, Any] = entry.options.get(CONF_MQTT) or {}
        return cls(
            export=bool(data.get(CONF_EXPORT, False)),
            prefix=str(data.get(CONF_PREFIX) or DEFAULT_PREFIX).rstrip("/"),
            min_interval=float(data.get(CONF_MIN_INTERVAL, DEFAULT_MIN_INTERVAL)),
            allow_control=bool(data.get(CONF_ALLOW_CONTROL, False)),
            allow_remote_start_stop=bool(data.get(CONF_ALLOW_REMOTE_START_STOP, False)),
        )


class MqttExport:
    """One per config entry: runs the exporter and the command topics on HA's MQTT client."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry, controller: Controller) -> None:
        self.hass = hass
        self.entry = entry
        self.controller = controller
        self.options = MqttOptions()
        self.state = MqttExportState.DISABLED
        self.exporter: StateExporter | None = None
        self.commands: CommandHandler | None = None
        self._unsubscribe: list[CALLBACK_TYPE] = []
        self._unsub_stop: CALLBACK_TYPE | None = None
        self._waiting: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.publish_errors = 0
        self._logged_error = False

    # ------------------------------------------------------------------ lifecycle
    async def async_start(self) -> None:
        """Start exporting if the options say so."""
        self.options = MqttOptions.from_entry(self.entry)
        if not self.options.export:
            clear_issue(self.hass, ISSUE_MQTT_MISSING)
            self._set_state(MqttExportState.DISABLED)
            return
        if not mqtt.mqtt_config_entry_enabled(self.hass):
            self._mqtt_missing()
            return
        if not any(
            e.state is ConfigEntryState.LOADED
            for e in self.hass.config_entries.async_entries(mqtt.DOMAIN)
        ):
            # MQTT is still setting up (or retrying): never hold our own setup for it.
            self._set_state(MqttExportState.BROKER_DISCONNECTED)
            self._waiting = self.entry.async_create_background_task(
                self.hass, self._async_wait_for_mqtt(), f"{DOMAIN} waits for MQTT"
            )
            return
        await self._async_run()

    async def _async_wait_for_mqtt(self) -> None:
        if await mqtt.async_wait_for_mqtt_client(self.hass):
            self._waiting = None
            await self._async_run()
        else:
            self._waiting = None
            self._mqtt_missing()

    def _mqtt_missing(self) -> None:
        _LOGGER.warning("MQTT export is on, but the MQTT integration is not set up")
        raise_issue(self.hass, ISSUE_MQTT_MISSING, ISSUE_MQTT_MISSING, {})
        self._set_state(MqttExportState.MQTT_MISSING)
        # Set up later: start then, without a reload.
        self._unsubscribe.append(
            self.hass.bus.async_listen(
                EVENT_COMPONENT_LOADED, self._on_component_loaded, event_filter=_is_mqtt
            )
        )

    async def _async_run(self) -> None:
        clear_issue(self.hass, ISSUE_MQTT_MISSING)
        topics = Topics(self.options.prefix)
        self.exporter = StateExporter(
            self.controller,
            self._publish_state,
            ExportSettings(self.options.prefix, self.options.min_interval),
        )
        if self.options.allow_control:
            self.commands = CommandHandler(
                self.controller,
                CommandSettings(
                    allow_control=True,
                    allow_remote_start_stop=self.options.allow_remote_start_stop,
                ),
            )
            self._unsubscribe.append(
                await mqtt.async_subscribe(
                    self.hass, topics.command_filter, self._on_command, qos=1, encoding=None
                )
            )
        self._unsubscribe.append(
            mqtt.async_subscribe_connection_status(self.hass, self._on_connection)
        )
        self._unsub_stop = self.hass.bus.async_listen_once(
            EVENT_HOMEASSISTANT_STOP, self._on_ha_stop
        )
        self.exporter.start()
        self._set_state(
            MqttExportState.ONLINE
            if mqtt.is_connected(self.hass)
            else MqttExportState.BROKER_DISCONNECTED
        )

    async def async_stop(self, *, clear: bool = False) -> None:
        """Say offline (and wait for it to leave), stop listening.

        `clear`: delete the retained topics instead (the prefix changes).
        """
        if self._waiting is not None:
            self._waiting.cancel()
            self._waiting = None
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        if self._unsub_stop is not None:
            self._unsub_stop()
            self._unsub_stop = None
        if self.exporter is not None:
            self.exporter.stop(clear=clear)
        self.exporter = None
        self.commands = None
        await self._drain()
        self._set_state(MqttExportState.DISABLED)

    async def async_apply(self) -> None:
        """The options changed: restart when the MQTT section did."""
        options = MqttOptions.from_entry(self.entry)
        if options == self.options and self.state is not MqttExportState.MQTT_MISSING:
            return
        # A new prefix: nothing is left behind under the old one.
        await self.async_stop(clear=options.prefix != self.options.prefix)
        await self.async_start()

    async def _on_component_loaded(self, _: Event) -> None:
        await self.async_apply()

    async def _on_ha_stop(self, _: Event) -> None:
        # HA's own client stops on the same event; publish offline before it goes.
        self._unsub_stop = None
        if self.exporter is not None:
            self.exporter.stop()
        await self._drain()

    async def _drain(self) -> None:
        if self._pending:
            await asyncio.wait(self._pending, timeout=STOP_TIMEOUT)

    # ------------------------------------------------------------------ MQTT
    def _publish_state(self, topic: str, payload: str, *, retain: bool) -> None:
        # States are superseded by the next one: QoS 0; availability must arrive: QoS 1.
        exporter = self.exporter
        qos = 1 if exporter is not None and topic == exporter.topics.availability else 0
        self._send(topic, payload, qos=qos, retain=retain)

    def _send(self, topic: str, payload: str, *, qos: int, retain: bool) -> None:
        task = self.hass.async_create_task(
            self._async_send(topic, payload, qos, retain), eager_start=True
        )
        if not task.done():
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _async_send(self, topic: str, payload: str, qos: int, retain: bool) -> None:
        try:
            await mqtt.async_publish(self.hass, topic, payload, qos=qos, retain=retain)
        except HomeAssistantError as err:
            self.publish_errors += 1
            if not self._logged_error:
                self._logged_error = True
                _LOGGER.warning("MQTT export could not publish (logged once): %s", err)

    @callback
    def _on_connection(self, connected: bool) -> None:  # HA's callback signature
        if self.exporter is None:
            return
        if connected:
            self.exporter.start()  # online again, then every state
        self._set_state(
            MqttExportState.ONLINE if connected else MqttExportState.BROKER_DISCONNECTED
        )

    async def _on_command(self, message: ReceiveMessage) -> None:
        exporter, commands = self.exporter, self.commands
        if exporter is None or commands is None:
            return
        name = exporter.topics.command_name(message.topic)
        if name is None:
            return
        payload = message.payload
        if isinstance(payload, bytearray):
            payload = bytes(payload)
        reply = await commands.handle(name, payload, retained=message.retain)
        self._send(exporter.topics.result, json.dumps(reply.to_dict()), qos=1, retain=False)
        async_dispatcher_send(self.hass, signal_mqtt(self.entry.entry_id))

    # ------------------------------------------------------------------ state
    def _set_state(self, state: MqttExportState) -> None:
        if state is not self.state:
            self.state = state
            async_dispatcher_send(self.hass, signal_mqtt(self.entry.entry_id))

    @property
    def messages(self) -> int:
        """State messages sent since the export started."""
        return self.exporter.messages if self.exporter is not None else 0

    def diagnostics(self) -> dict[str, Any]:
        """Options, state, counters and the last command's reply."""
        commands = self.commands
        return {
            "options": {
                CONF_EXPORT: self.options.export,
                CONF_PREFIX: self.options.prefix,
                CONF_MIN_INTERVAL: self.options.min_interval,
                CONF_ALLOW_CONTROL: self.options.allow_control,
                CONF_ALLOW_REMOTE_START_STOP: self.options.allow_remote_start_stop,
            },
            "state": self.state.value,
            "exporter": self.exporter.diagnostics() if self.exporter is not None else None,
            "publish_errors": self.publish_errors,
            "commands": None
            if commands is None
            else {
                "accepted": commands.accepted,
                "refused": commands.refused,
                "last": commands.last.to_dict() if commands.last else None,
            },
        }
