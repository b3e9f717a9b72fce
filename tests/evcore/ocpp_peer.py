"""A real OCPP 1.6J charge point for the tests: the `ocpp` library's client side.

`Charger` answers every request the central system sends with a configurable answer, records
what it received, and can be told to ignore (never answer) chosen actions. Tests wait for its
requests with `wait_request`, which is event-driven.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
import contextlib
import json
from typing import TYPE_CHECKING, Any

from ocpp.messages import MessageType, unpack
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.exceptions import ConnectionClosed

if TYPE_CHECKING:
    from collections.abc import Callable

    from websockets.asyncio.client import ClientConnection

    from custom_components.ev_charging_expert.evcore.site import Site

# The failsafe of every event-driven wait: never reached by a passing test.
FAILSAFE_S = 10

DEFAULT_CONFIGURATION = {
    "NumberOfConnectors": "2",
    "HeartbeatInterval": "300",
    "SupportedFeatureProfiles": "Core,FirmwareManagement,RemoteTrigger,SmartCharging",
    "MeterValuesSampledData": "Energy.Active.Import.Register,Current.Import",
}

# What the charger answers by default, per action (kwargs of the call_result class).
DEFAULT_ANSWERS: dict[str, dict[str, Any]] = {
    "RemoteStartTransaction": {"status": "Accepted"},
    "RemoteStopTransaction": {"status": "Accepted"},
    "Reset": {"status": "Accepted"},
    "UnlockConnector": {"status": "Unlocked"},
    "ChangeAvailability": {"status": "Accepted"},
    "TriggerMessage": {"status": "Accepted"},
    "UpdateFirmware": {},
    "GetDiagnostics": {"file_name": "diagnostics-0001.zip"},
    "ChangeConfiguration": {"status": "Accepted"},
    "ClearCache": {"status": "Accepted"},
    "DataTransfer": {"status": "Accepted", "data": "pong"},
    "SetChargingProfile": {"status": "Accepted"},
    "ClearChargingProfile": {"status": "Accepted"},
}


class Charger(ChargePoint):
    """A charge point peer: the counterpart of the central system under test."""

    def __init__(self, station_id: str, connection: Any) -> None:
        super().__init__(station_id, connection, response_timeout=FAILSAFE_S)
        self.configuration: dict[str, str] = dict(DEFAULT_CONFIGURATION)
        # Per action: kwargs for the answer, or an exception to answer with a CallError.
        self.answers: dict[str, dict[str, Any] | Exception] = {}
        # Actions this charger never answers (their Call is recorded, then dropped).
        self.ignore: set[str] = set()
        # Send the triggered message after accepting a TriggerMessage.
        self.send_triggered = True
        self.requests: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.unique_ids: dict[str, list[str]] = defaultdict(list)
        self._arrived = asyncio.Condition()
        self.task: asyncio.Task[None] | None = None
        # Messages sent on the charger's own initiative (after a TriggerMessage).
        self.background: set[asyncio.Task[None]] = set()

    @property
    def ws(self) -> Any:
        """The client websocket."""
        return self._connection

    # ------------------------------------------------------------------ plumbing
    async def route_message(self, raw_msg: str | bytes) -> None:
        msg = unpack(raw_msg)
        if msg.message_type_id == MessageType.Call and msg.action in self.ignore:
            await self._record(msg.action, msg.payload, msg.unique_id)
            return
        await super().route_message(raw_msg)

    async def _record(self, action: str, payload: dict[str, Any], unique_id: str) -> None:
        async with self._arrived:
            self.requests[action].append(payload)
            self.unique_ids[action].append(unique_id)
            self._arrived.notify_all()

    async def wait_request(self, action: str, count: int = 1) -> dict[str, Any]:
        """Wait until `count` requests of `action` arrived; return the last one."""
        async with asyncio.timeout(FAILSAFE_S), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests[action]) >= count)
        return self.requests[action][count - 1]

    async def _answer(self, action: str, call_unique_id: str, **kwargs: Any) -> Any:
        await self._record(action, kwargs, call_unique_id)
        answer = self.answers.get(action, DEFAULT_ANSWERS.get(action, {}))
        if isinstance(answer, Exception):
            raise answer
        return getattr(call_result, action)(**answer)

    async def send_raw(self, frame: str | bytes) -> None:
        """Send a frame as is."""
        await self._connection.send(frame)

    async def answer_late(self, action: str, payload: dict[str, Any]) -> None:
        """Answer the last ignored `action` request now (a late CallResult)."""
        unique_id = self.unique_ids[action][-1]
        await self.send_raw(f'[3,"{unique_id}",{json.dumps(payload)}]')

    # ------------------------------------------------------------------ what chargers send
    async def boot(self, **fields: Any) -> call_result.BootNotification:
        """Send a BootNotification (vendor "Acme", model "Wallbox" unless given)."""
        fields.setdefault("charge_point_vendor", "Acme")
        fields.setdefault("charge_point_model", "Wallbox")
        return await self.call(call.BootNotification(**fields), suppress=False)

    async def status(
        self, connector_id: int, status: str = "Available", error_code: str = "NoError", **kw: Any
    ) -> call_result.StatusNotification:
        """Send a StatusNotification."""
        return await self.call(
            call.StatusNotification(
                connector_id=connector_id, error_code=error_code, status=status, **kw
            ),
            suppress=False,
        )

    async def start_transaction(
        self, connector_id: int = 1, id_tag: str = "TAG1", meter_start: int = 1000, **kw: Any
    ) -> call_result.StartTransaction:
        """Send a StartTransaction."""
        kw.setdefault("timestamp", "2026-01-01T10:00:00+00:00")
        return await self.call(
            call.StartTransaction(
                connector_id=connector_id, id_tag=id_tag, meter_start=meter_start, **kw
            ),
            suppress=False,
        )

    # ------------------------------------------------------------------ requests from the CS
    @on(Action.remote_start_transaction)
    async def _remote_start(self, call_unique_id: str, **kw: Any) -> Any:
        return await self._answer("RemoteStartTransaction", call_unique_id, **kw)

    @on(Action.remote_stop_transaction)
    async def _remote_stop(self, call_unique_id: str, **kw: Any) -> Any:
        return await self._answer("RemoteStopTransaction", call_unique_id, **kw)

    @on(Action.reset)
    async def _reset(self, call_unique_id: str, **kw: Any) -> Any:
        return await self._answer("Reset", call_unique_id, **kw)

    @on(Action.unlock_connector)
    async def _unlock(self, call_unique_id: str, **kw: Any) -> Any:
        return await self._answer("UnlockConnector", call_unique_id, **kw)

    @on(Action.change_availability)
    async def _availability(self, call_unique_id: str, **kw: Any) -> Any:
        return await self._answer("ChangeAvailability", call_unique_id, **kw)

    @on(Action.trigger_message)
    async def _trigger(self, call_unique_id: str, **kw: Any) -> Any:
        return await self._answer("TriggerMessage", call_unique_id, **kw)

    @after(Action.trigger_message)
    def _after_trigger(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> None:
        answer = self.answers.get("TriggerMessage", DEFAULT_ANSWERS["TriggerMessage"])
        if not self.send_triggered or isinstance(answer, Exception):
            return
        if answer.get("status") != "Accepted":
            return
        task = asyncio.get_running_loop().create_task(
            self._send_triggered(requested_message, connector_id)
        )
        self.background.add(task)

    async def _send_triggered(self, requested_message: str, connector_id: int | None) -> None:
        payload = {
            "BootNotification": lambda: call.BootNotification(
                charge_point_vendor="Acme", charge_point_model="Wallbox"
            ),
            "DiagnosticsStatusNotification": lambda: call.DiagnosticsStatusNotification(
                status="Idle"
            ),
            "FirmwareStatusNotification": lambda: call.FirmwareStatusNotification(status="Idle"),
            "Heartbeat": call.Heartbeat,
            "MeterValues": lambda: call.MeterValues(
                connector_id=connector_id or 1,
                meter_value=[
                    {
                        "timestamp": "2026-01-01T00:00:00+00:00",
                        "sampledValue": [{"value": "4242", "unit": "Wh"}],
                    }
                ],
            ),
            "StatusNotification": lambda: call.StatusNotification(
                connector_id=connector_id or 0, error_code="NoError", status="Available"
            ),
        }[requested_message]()
        await self.call(payload, suppress=False)

    @on(Action.set_charging_profile)
    async def _set_charging_profile(self, call_unique_id: str, **kw: Any) -> Any:
        return await self._answer("SetChargingProfile", call_unique_id, **kw)

    @on(Action.clear_charging_profile)
    async def _clear_charging_profile(self, call_unique_id: str, **kw: Any) -> Any:
        return await self._answer("ClearChargingProfile", call_unique_id, **kw)

    @on(Action.update_firmware)
    async def _update_firmware(self, call_unique_id: str, **kw: Any) -> Any:
        return await self._answer("UpdateFirmware", call_unique_id, **kw)

    @on(Action.get_diagnostics)
    async def _get_diagnostics(self, call_unique_id: str, **kw: Any) -> Any:
        return await self._answer("GetDiagnostics", call_unique_id, **kw)

    @on(Action.get_configuration)
    async def _get_configuration(self, call_unique_id: str, key: list[str] | None = None) -> Any:
        await self._record("GetConfiguration", {"key": key}, call_unique_id)
        answer = self.answers.get("GetConfiguration")
        if isinstance(answer, Exception):
            raise answer
        if answer is not None:
            return call_result.GetConfiguration(**answer)
        wanted = key or list(self.configuration)
        known = [
            {"key": k, "readonly": False, "value": self.configuration[k]}
            for k in wanted
            if k in self.configuration
        ]
        unknown = [k for k in wanted if k not in self.configuration]
        return call_result.GetConfiguration(
            configuration_key=known or None, unknown_key=unknown or None
        )

    @on(Action.change_configuration)
    async def _change_configuration(self, call_unique_id: str, **kw: Any) -> Any:
        return await self._answer("ChangeConfiguration", call_unique_id, **kw)

    @on(Action.clear_cache)
    async def _clear_cache(self, call_unique_id: str, **kw: Any) -> Any:
        return await self._answer("ClearCache", call_unique_id, **kw)

    @on(Action.data_transfer)
    async def _data_transfer(self, call_unique_id: str, **kw: Any) -> Any:
        return await self._answer("DataTransfer", call_unique_id, **kw)


async def wait_until(site: Site, predicate: Callable[[], Any]) -> None:
    """Return once `predicate()` holds, re-checking it on every site event."""
    if predicate():
        return
    holds = asyncio.Event()

    def check(_event: object) -> None:
        if predicate():
            holds.set()

    unsubscribe = site.subscribe(check)
    try:
        async with asyncio.timeout(FAILSAFE_S):
            await holds.wait()
    finally:
        unsubscribe()


async def recv_json(ws: ClientConnection) -> Any:
    """Receive one frame and decode it."""
    async with asyncio.timeout(FAILSAFE_S):
        return json.loads(await ws.recv())


async def close_charger(charger: Charger) -> None:
    """Close a charger's websocket and wait for its receive loop to end."""
    for task in charger.background:
        task.cancel()
    await asyncio.gather(*charger.background, return_exceptions=True)
    await charger.ws.close()
    if charger.task is not None:
        with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
            await charger.task
