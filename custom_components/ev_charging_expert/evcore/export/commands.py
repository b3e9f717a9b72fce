"""Commands from outside (MQTT): JSON-Schema-checked, run through the Controller's commands.

Executed through the same Controller and Site commands as HA's own entities and services.

Every command gets one reply (`CommandReply`: the request's `id`, accepted or refused with a
code and a message). A payload that is not valid JSON, does not match its command's schema, or
names an unknown zone, station or connector is refused and changes nothing. Nothing here can
raise a limit: a zone setpoint goes through the operating rules (which refuse more than the
zone's max and honour the remote-setpoint source, minimum period and heartbeat), and a
connector's current limit is a cap below its rating, as the HA number entity sets it.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import logging
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from ..errors import ChargerError, ChargerNotConnectedError, ChargerRejectedError
from ..limits import LogOncePer
from ..model import Registration
from ..rules import SetpointSource

if TYPE_CHECKING:
    from ..controller import Controller
    from ..model import StationState

_LOGGER = logging.getLogger(__name__)

MAX_PAYLOAD = 4096
"""Bytes of one command; every valid command is far below."""

_ID = {
    "description": "Correlation id, echoed in the reply.",
    "type": ["string", "integer"],
    "maxLength": 64,
}
_STATION = {
    "description": "Charge box identity.",
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
}
_CONNECTOR = {"description": "Connector (1..n).", "type": "integer", "minimum": 1, "maximum": 100}
_AMPS = {
    "description": "Amperes per phase; null clears it.",
    "type": ["number", "null"],
    "minimum": 0,
    "maximum": 10000,
}


def _command(title: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "type": "object",
        "properties": {"id": _ID, **properties},
        "required": required,
        "additionalProperties": False,
    }


COMMAND_SCHEMAS: dict[str, dict[str, Any]] = {
    "zone_setpoint": _command(
        "Set (or clear, with null) a zone's remote setpoint",
        {
            "zone": {"description": "Zone id or name.", "type": "string", "minLength": 1},
            "amps": _AMPS,
        },
        ["zone", "amps"],
    ),
    "heartbeat": _command("Renew the remote-setpoint heartbeat", {}, []),
    "connector_limit": _command(
        "Cap a connector's current below its rating (null: no cap)",
        {"station": _STATION, "connector": _CONNECTOR, "amps": _AMPS},
        ["station", "connector", "amps"],
    ),
    "connector_pause": _command(
        "Pause (no current) or resume a connector",
        {"station": _STATION, "connector": _CONNECTOR, "paused": {"type": "boolean"}},
        ["station", "connector", "paused"],
    ),
    "remote_start": _command(
        "Ask a charger to start a session (needs remote start/stop allowed)",
        {
            "station": _STATION,
            "connector": _CONNECTOR,
            "id_tag": {"type": "string", "minLength": 1, "maxLength": 20},
        },
        ["station", "id_tag"],
    ),
    "remote_stop": _command(
        "Ask a charger to stop a session (needs remote start/stop allowed)",
        {"station": _STATION, "connector": _CONNECTOR, "transaction_id": {"type": "integer"}},
        ["station"],
    ),
}
REPLY_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Command result",
    "type": "object",
    "properties": {
        "id": {"type": ["string", "integer", "null"]},
        "command": {"type": "string"},
        "accepted": {"type": "boolean"},
        "code": {"type": "string"},
        "message": {"type": "string"},
    },
    "required": ["id", "command", "accepted", "code", "message"],
}
_VALIDATORS = {name: Draft202012Validator(schema) for name, schema in COMMAND_SCHEMAS.items()}
_ID_VALIDATOR = Draft202012Validator(_ID)
_REMOTE = frozenset({"remote_start", "remote_stop"})


@dataclass(frozen=True, slots=True)
class CommandReply:
    """The answer to one command."""

    id: str | int | None
    command: str
    accepted: bool
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """As published on the result topic."""
        return {
            "id": self.id,
            "command": self.command,
            "accepted": self.accepted,
            "code": self.code,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class CommandSettings:
    """What outside clients may do."""

    allow_control: bool = False
    allow_remote_start_stop: bool = False


class Refused(Exception):  # noqa: N818  # a refusal, not an error of ours
    """A command that is refused with a code and a message."""

    def __init__(self, code: str, message: str, request_id: str | int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def parse(command: str, payload: str | bytes) -> tuple[str | int | None, dict[str, Any]]:
    """The request's id and its checked fields; raises Refused naming the bad field."""
    if command not in _VALIDATORS:
        raise Refused("unknown_command", f"unknown command {command!r}")
    if len(payload) > MAX_PAYLOAD:
        raise Refused("invalid_payload", f"payload over {MAX_PAYLOAD} bytes")
    try:
        data = json.loads(payload, parse_constant=_no_constant) if payload else {}
    except (ValueError, UnicodeDecodeError) as err:
        raise Refused("invalid_json", f"not JSON: {err}") from err
    if not isinstance(data, dict):
        raise Refused("invalid_payload", "the payload must be a JSON object")
    request_id = data.get("id")
    if not _ID_VALIDATOR.is_valid(request_id) or isinstance(request_id, bool):
        request_id = None
    error = best_match(_VALIDATORS[command].iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "payload"
        raise Refused("invalid_payload", f"{where}: {error.message}", request_id)
    return request_id, data


class CommandHandler:
    """Executes checked commands against a Controller."""

    def __init__(self, controller: Controller, settings: CommandSettings | None = None) -> None:
        self.controller = controller
        self.settings = settings or CommandSettings()
        self._log = LogOncePer(controller.clock)
        self.accepted = 0
        self.refused = 0
        self.last: CommandReply | None = None

    async def handle(
        self, command: str, payload: str | bytes, *, retained: bool = False
    ) -> CommandReply:
        """Parse, check and run one command; always returns the reply to publish.

        `retained`: the broker kept the command and delivers it to a new subscription; it is
        refused, or it would run again at every reconnect.
        """
        request_id: str | int | None = None
        try:
            request_id, data = self._parse(command, payload)
            code, message = await self._run(command, data, retained=retained)
            reply = CommandReply(request_id, command, accepted=True, code=code, message=message)
        except Refused as refused:
            request_id = request_id if refused.request_id is None else refused.request_id
            reply = CommandReply(
                request_id, command, accepted=False, code=refused.code, message=refused.message
            )
            self._log.log(
                _LOGGER, "mqtt", f"{command}/{refused.code}",
                "MQTT command %s refused (%s): %s", command, refused.code, refused.message,
            )  # fmt: skip
        if reply.accepted:
            self.accepted += 1
        else:
            self.refused += 1
        self.last = reply
        return reply

    def _parse(self, command: str, payload: str | bytes) -> tuple[str | int | None, dict[str, Any]]:
        if not self.settings.allow_control:
            raise Refused("control_disabled", "control by MQTT is not allowed")
        return parse(command, payload)

    async def _run(self, command: str, data: dict[str, Any], *, retained: bool) -> tuple[str, str]:
        if retained:
            raise Refused("retained", "retained commands are not run; publish without retain")
        if command in _REMOTE and not self.settings.allow_remote_start_stop:
            raise Refused("disabled", "remote start/stop by MQTT is not allowed")
        match command:
            case "zone_setpoint":
                return self._zone_setpoint(data)
            case "heartbeat":
                return _result(self.controller.remote_heartbeat(SetpointSource.MQTT))
            case "connector_limit" | "connector_pause":
                return self._connector_setting(command, data)
            case "remote_start":
                return await self._remote_start(data)
            case _:
                return await self._remote_stop(data)

    # ------------------------------------------------------------------ zones
    def _zone_id(self, name: str) -> str:
        zones = self.controller.load.zones
        if name in zones:
            return name
        matches = [z for z, c in zones.items() if c.name.casefold() == name.casefold()]
        if len(matches) != 1:
            raise Refused("unknown_zone", f"no zone {name!r}")
        return matches[0]

    def _zone_setpoint(self, data: dict[str, Any]) -> tuple[str, str]:
        zone_id = self._zone_id(data["zone"])
        amps = data["amps"]
        if amps is None:
            return _result(self.controller.clear_zone_setpoint(zone_id, source=SetpointSource.MQTT))
        return _result(
            self.controller.set_zone_setpoint(zone_id, float(amps), source=SetpointSource.MQTT)
        )

    # ------------------------------------------------------------------ connectors
    def _station(self, station_id: str) -> StationState:
        station = self.controller.site.stations.get(station_id)
        if station is None or station.registration is not Registration.ACCEPTED:
            raise Refused("unknown_station", f"no station {station_id!r}")
        return station

    def _connector(self, data: dict[str, Any]) -> tuple[StationState, int]:
        station = self._station(data["station"])
        connector_id: int = data["connector"]
        if connector_id not in station.connectors and connector_id not in station.config.connectors:
            raise Refused(
                "unknown_connector",
                f"station {station.station_id!r} has no connector {connector_id}",
            )
        return station, connector_id

    def _connector_setting(self, command: str, data: dict[str, Any]) -> tuple[str, str]:
        # The same change as the connector's "current limit" number and "pause" switch.
        station, connector_id = self._connector(data)
        config = station.config
        settings = config.connector(connector_id)
        if command == "connector_pause":
            config = config.with_connector(connector_id, paused=data["paused"])
            message = "paused" if data["paused"] else "resumed"
        else:
            amps = data["amps"]
            if amps is not None and amps > settings.rating:
                raise Refused(
                    "out_of_range", f"amps: {amps:g} A is above the rating {settings.rating:g} A"
                )
            limit = None if amps is None or amps >= settings.rating else float(amps)
            config = config.with_connector(connector_id, user_limit=limit)
            message = "no limit" if limit is None else f"limited to {limit:g} A"
        self.controller.site.configure_station(station.station_id, config)
        return "accepted", message

    async def _remote_start(self, data: dict[str, Any]) -> tuple[str, str]:
        station = self._station(data["station"])
        connector_id: int | None = data.get("connector")
        return await self._charger_call(
            station.station_id,
            lambda charger: charger.remote_start(data["id_tag"], connector_id),
        )

    async def _remote_stop(self, data: dict[str, Any]) -> tuple[str, str]:
        station = self._station(data["station"])
        transaction_id: int | None = data.get("transaction_id")
        if transaction_id is None:
            running = [
                c.transaction.transaction_id
                for c in station.charge_points
                if c.transaction is not None and data.get("connector") in (None, c.connector_id)
            ]
            if len(running) != 1:
                raise Refused("no_single_transaction", "say which transaction_id to stop")
            transaction_id = running[0]
        stop = transaction_id
        return await self._charger_call(
            station.station_id, lambda charger: charger.remote_stop(stop)
        )

    async def _charger_call(self, station_id: str, call: Any) -> tuple[str, str]:
        try:
            charger = self.controller.charger(station_id)
            status = await call(charger)
        except ChargerNotConnectedError as err:
            raise Refused("not_connected", str(err)) from err
        except ChargerRejectedError as err:
            raise Refused("rejected_by_charger", str(err)) from err
        except ChargerError as err:
            raise Refused("charger_error", str(err)) from err
        return "accepted", f"the charger answered {status}"


def _result(result: Any) -> tuple[str, str]:
    if not result.accepted:
        raise Refused(result.code, result.message)
    return result.code, result.message
