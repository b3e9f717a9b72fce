"""OCPP 1.6J charge point handler: incoming messages go to `Site`; it implements the charger port.

The `ocpp` library does the framing, routing, schema validation and call/result matching; this
module only adds what the library leaves to its users: answers for malformed frames, a gate for
chargers that are not accepted, and requests that raise typed errors on timeout or refusal.
"""

from __future__ import annotations

import asyncio
from contextlib import contextmanager
from datetime import UTC
import logging
import re
import sys
from typing import TYPE_CHECKING, Any

from ocpp.exceptions import (
    OCPPError,
    PropertyConstraintViolationError,
    ProtocolError,
    SecurityError,
    UnknownCallErrorCodeError,
)
from ocpp.messages import CallError, MessageType, unpack
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import Action, AuthorizationStatus, DataTransferStatus, RegistrationStatus
from websockets.exceptions import ConnectionClosed

from ...charger import (
    Capabilities,
    CommandStatus,
    ConfigurationResult,
    LocalListEntry,
    TriggerMessage,
)
from ...clock import parse_timestamp
from ...errors import (
    ChargerCallError,
    ChargerError,
    ChargerInputError,
    ChargerNotConnectedError,
    ChargerRejectedError,
    ChargerTimeoutError,
)
from ...limits import MAX_QUEUED_ANSWERS
from ...model import BootInfo, ConnectorStatus, Registration
from .framing import FrameLimitError, decode_frame, unique_id_of
from .metering import parse_meter_values
from .smart_charging import base_profile, capabilities_from_configuration, lease_profile

if TYPE_CHECKING:
    from collections.abc import Coroutine, Iterator, Sequence
    from datetime import datetime

    from ...auth.decision import AuthDecision
    from ...site import Site

_LOGGER = logging.getLogger(__name__)


class _FramesAtDebug(logging.LoggerAdapter[logging.Logger]):
    """The library's log, tamed.

    It logs every frame at INFO (debug here: a log set to info would flood), an answer to a
    request that timed out at ERROR (debug: it is counted as a stray answer), and a CallError
    that a handler raises on purpose at ERROR with a traceback (debug, without: it is an
    answer, not a failure). Every argument is a charger's frame or field: quoted with repr so
    that a newline in it cannot forge a log line. Frames carry the charger's AuthorizationKey
    (ChangeConfiguration, and GetConfiguration answers of chargers that report it): its value
    is redacted from every line.
    """

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if level == logging.INFO or msg == _STRAY_ANSWER_LOG:
            level = logging.DEBUG
        elif isinstance(sys.exc_info()[1], OCPPError) and kwargs.get("exc_info"):
            level = logging.DEBUG
            kwargs["exc_info"] = False
        if self.isEnabledFor(level):
            args = tuple(a if isinstance(a, (int, float)) else repr(redact_frame(a)) for a in args)
            super().log(level, msg, *args, **kwargs)


# How ocpp 2.1.0 logs an answer whose request is gone (ChargePoint._get_specific_response).
_STRAY_ANSWER_LOG = "Ignoring response with unknown unique id: %s"


# A quoted string, JSON or Python repr, and the innermost {...} objects around such strings.
_QUOTED = r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'"""
_OBJECT = re.compile(rf"""\{{(?:[^{{}}"']|{_QUOTED})*\}}""")
_VALUE = re.compile(rf"""(["']value["']\s*:\s*)(?:{_QUOTED})""")
_SECRET_KEYS = ("AuthorizationKey",)


def redact_frame(arg: object) -> object:
    """`arg` (a frame, or a message object that prints one) with secret values replaced."""
    text = arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)
    if not any(key in text for key in _SECRET_KEYS):
        return arg
    return _OBJECT.sub(_redact_object, text)


def _redact_object(match: re.Match[str]) -> str:
    obj = match.group()
    if not any(key in obj for key in _SECRET_KEYS):
        return obj
    return _VALUE.sub(r'\1"**REDACTED**"', obj)


_FRAME_LOG = _FramesAtDebug(logging.getLogger(f"{__package__}.frames"))

DEFAULT_TIMEOUT = 30.0

# What a charger that is not (yet) accepted may still send.
_ALLOWED_WHEN_NOT_ACCEPTED = frozenset({Action.boot_notification, Action.heartbeat})

# Configuration keys read from every charger after its boot is accepted.
BOOT_CONFIGURATION_KEYS = (
    "NumberOfConnectors",
    "SupportedFeatureProfiles",
    "ChargeProfileMaxStackLevel",
    "ChargingScheduleAllowedChargingRateUnit",
    "ChargingScheduleMaxPeriods",
    "MaxChargingProfilesInstalled",
    "HeartbeatInterval",
    "MeterValueSampleInterval",
    "MeterValuesSampledData",
)


# Secrets a charger accepts but never reports back; we must not keep them either.
WRITE_ONLY_KEYS = frozenset({"AuthorizationKey"})


class ChargePointV16(ChargePoint):  # type: ignore[misc]  # the ocpp package is untyped
    """One connected OCPP 1.6J charger."""

    VERSION = "OCPP 1.6J"

    def __init__(
        self,
        station_id: str,
        connection: Any,
        site: Site,
        *,
        request_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        # The library's own response timeout is a backstop; ours (per request, on the site's
        # clock) is what callers see.
        super().__init__(station_id, connection, response_timeout=3600, logger=_FRAME_LOG)
        self._site = site
        self.request_timeout = request_timeout
        self._tasks: set[asyncio.Task[None]] = set()
        self._reader_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._capabilities: tuple[dict[str, str], Capabilities] | None = None
        # Unique ids of our requests still waiting for their answer: only those are queued
        # for `call()`; any other answer is stray (the library would queue it forever).
        self._awaiting: set[str] = set()
        self._response_queue: asyncio.Queue[Any] = asyncio.Queue(MAX_QUEUED_ANSWERS)
        self._configuration_read: asyncio.Task[None] | None = None

    @property
    def station_id(self) -> str:
        """The charge box identity."""
        return str(self.id)

    async def start(self) -> None:
        """Read and route frames until the connection closes."""
        try:
            await super().start()
        finally:
            if not self._reader_done.done():
                self._reader_done.set_result(None)

    # ------------------------------------------------------------------ framing
    async def route_message(self, raw_msg: str | bytes) -> None:
        """Route one frame; answer frames the library would silently drop or choke on."""
        self._site.frame_received(self.station_id)
        try:
            decoded = decode_frame(raw_msg)
        except FrameLimitError as err:
            await self._reply_to_unparseable(raw_msg, err.error, err.unique_id)
            return
        except ValueError:
            decoded = None  # not JSON: the library's own decoding says so below
        try:
            msg = unpack(raw_msg)
        except OCPPError as err:
            await self._reply_to_unparseable(raw_msg, err, unique_id_of(decoded))
            return
        if msg.message_type_id == MessageType.Call:
            if not isinstance(msg.action, str):
                # Unhashable actions ([], {}) would otherwise crash the connection's loop.
                error = ProtocolError(details={"cause": "Action must be a string"})
                await self._reply_to_unparseable(raw_msg, error, msg.unique_id)
                return
            if msg.action not in _ALLOWED_WHEN_NOT_ACCEPTED and not self._site.is_accepted(
                self.station_id
            ):
                error = SecurityError(description="Charger is not accepted by the central system")
                await self._send(msg.create_call_error(error).to_json())
                return
            try:
                await self._handle_call(msg)
            except OCPPError as err:
                _LOGGER.debug("%r: %r rejected: %r", self.id, msg.action, err)
                await self._send(msg.create_call_error(err).to_json())
        elif (
            isinstance(msg.unique_id, str)  # [3, [], {}] would crash a set lookup
            and msg.unique_id in self._awaiting
            and not self._response_queue.full()
        ):
            # The first answer wins; a second one with the same id is stray.
            self._awaiting.discard(msg.unique_id)
            self._response_queue.put_nowait(msg)
        else:
            self._site.input_rejected(
                self.station_id, "answer", f"answer to no request of ours: {msg.unique_id!r:.60}"
            )

    async def _reply_to_unparseable(
        self, raw_msg: str | bytes, err: OCPPError, unique_id: str
    ) -> None:
        # Answer with the frame's unique id when there is one; "-1" otherwise (the convention
        # OCPP 2.0.1 made explicit), so the charger learns that its frame was refused.
        self._site.input_rejected(
            self.station_id, "frame", f"malformed frame ({err.code}): {raw_msg!r:.200}"
        )
        # Details carry the cause only: echoing a large garbage frame back helps nobody.
        cause = err.details.get("cause") if isinstance(err.details, dict) else None
        reply = CallError(unique_id, err.code, err.description, {"cause": cause} if cause else {})
        await self._send(reply.to_json())

    # ------------------------------------------------------------------ incoming
    @on(Action.boot_notification)
    def on_boot_notification(
        self,
        charge_point_vendor: str,
        charge_point_model: str,
        **kwargs: str,
    ) -> call_result.BootNotification:
        """Register the charger's identity; accept, hold pending or reject it."""
        boot = BootInfo(
            vendor=charge_point_vendor,
            model=charge_point_model,
            serial_number=kwargs.get("charge_point_serial_number"),
            charge_box_serial_number=kwargs.get("charge_box_serial_number"),
            firmware_version=kwargs.get("firmware_version"),
            iccid=kwargs.get("iccid"),
            imsi=kwargs.get("imsi"),
            meter_type=kwargs.get("meter_type"),
            meter_serial_number=kwargs.get("meter_serial_number"),
        )
        registration = self._site.station_booted(self.station_id, boot)
        status = {
            Registration.ACCEPTED: RegistrationStatus.accepted,
            Registration.PENDING: RegistrationStatus.pending,
        }.get(registration, RegistrationStatus.rejected)
        interval = self._site.heartbeat_interval
        if status is not RegistrationStatus.accepted:
            # Retry soon so an accepted charger comes in without waiting a heartbeat period.
            interval = min(interval, 60)
        return call_result.BootNotification(
            current_time=self._site.clock.now().isoformat(), interval=interval, status=status
        )

    @after(Action.boot_notification)
    def after_boot_notification(self, **_: Any) -> None:
        """Read the configuration keys the site needs, once the charger is accepted."""
        # One read at a time: a charger that boots in a loop must not queue up reads.
        reading = self._configuration_read
        if self._site.is_accepted(self.station_id) and (reading is None or reading.done()):
            self._configuration_read = self._spawn(self.read_boot_configuration())

    async def read_boot_configuration(self) -> None:
        """Fetch BOOT_CONFIGURATION_KEYS into the station state; failures are only logged."""
        try:
            result = await self.get_configuration(list(BOOT_CONFIGURATION_KEYS))
        except ChargerError as err:
            _LOGGER.info("%r: could not read its configuration: %s", self.id, err)
            return
        # Only what we asked for: the station's configuration is stored.
        keys = [k for k in result.keys if k.get("key") in BOOT_CONFIGURATION_KEYS]
        self._site.configuration_read(self.station_id, keys)

    @on(Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        """Answer with the time and note the heartbeat."""
        self._site.heartbeat(self.station_id)
        return call_result.Heartbeat(current_time=self._site.clock.now().isoformat())

    @on(Action.status_notification)
    def on_status_notification(
        self, connector_id: int, error_code: str, status: str, **kwargs: str
    ) -> call_result.StatusNotification:
        """Record the status of a connector (or of the station for connector 0)."""
        with _refused_as_call_error():
            self._site.connector_status(
                self.station_id,
                connector_id,
                status=_STATUS.get(status, ConnectorStatus.UNKNOWN),
                error_code=error_code,
                info=kwargs.get("info"),
                vendor_id=kwargs.get("vendor_id"),
                vendor_error_code=kwargs.get("vendor_error_code"),
                timestamp=parse_timestamp(kwargs.get("timestamp"), self._site.clock.now()),
            )
        return call_result.StatusNotification()

    @on(Action.meter_values)
    def on_meter_values(
        self,
        connector_id: int,
        meter_value: list[dict[str, Any]],
        transaction_id: int | None = None,
        **_: Any,
    ) -> call_result.MeterValues:
        """Store every sampled value, normalised."""
        samples = parse_meter_values(meter_value, self._site.clock.now())
        with _refused_as_call_error():
            self._site.measurements(self.station_id, connector_id, samples, transaction_id)
        return call_result.MeterValues()

    @on(Action.authorize)
    def on_authorize(self, id_tag: str, **_: Any) -> call_result.Authorize:
        """Decide whether an idTag may charge."""
        decision = self._site.authorize(self.station_id, id_tag)
        return call_result.Authorize(id_tag_info=_id_tag_info(decision))

    @on(Action.start_transaction)
    def on_start_transaction(
        self,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        timestamp: str,
        reservation_id: int | None = None,
        **_: Any,
    ) -> call_result.StartTransaction:
        """Open a transaction and give it a site-unique id."""
        with _refused_as_call_error():
            transaction, decision = self._site.start_session(
                self.station_id,
                connector_id,
                id_tag=id_tag,
                meter_start_wh=float(meter_start),
                started_at=parse_timestamp(timestamp, self._site.clock.now()),
                reservation_id=reservation_id,
            )
        return call_result.StartTransaction(
            transaction_id=transaction.transaction_id,
            id_tag_info=_id_tag_info(decision),
        )

    @on(Action.stop_transaction)
    def on_stop_transaction(
        self,
        *,
        meter_stop: int,
        timestamp: str,
        transaction_id: int,
        reason: str | None = None,
        id_tag: str | None = None,
        transaction_data: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> call_result.StopTransaction:
        """Close the transaction with its final meter value and transaction data."""
        now = self._site.clock.now()
        self._site.stop_session(
            self.station_id,
            transaction_id,
            meter_stop_wh=float(meter_stop),
            stopped_at=parse_timestamp(timestamp, now),
            reason=reason or "Local",
            id_tag=id_tag,
            transaction_data=parse_meter_values(transaction_data or [], now),
        )
        if id_tag is None:
            return call_result.StopTransaction()
        return call_result.StopTransaction(
            id_tag_info=IdTagInfo(status=AuthorizationStatus.accepted)
        )

    @on(Action.data_transfer)
    def on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None, **_: Any
    ) -> call_result.DataTransfer:
        """Report vendor data to the site; we implement no vendor extension ourselves."""
        self._site.vendor_data(self.station_id, vendor_id, message_id, data)
        return call_result.DataTransfer(status=DataTransferStatus.unknown_vendor_id)

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status_notification(
        self, status: str, **_: Any
    ) -> call_result.DiagnosticsStatusNotification:
        """Track the diagnostics upload."""
        self._site.diagnostics_status(self.station_id, status)
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status_notification(
        self, status: str, **_: Any
    ) -> call_result.FirmwareStatusNotification:
        """Track the firmware update."""
        self._site.firmware_status(self.station_id, status)
        return call_result.FirmwareStatusNotification()

    # ------------------------------------------------------------------ outgoing
    async def request(
        self, payload: Any, *, timeout: float | None = None, validate: bool = True
    ) -> Any:
        """Send one request and return the charger's answer.

        Raises ChargerTimeoutError when the charger does not answer in time,
        ChargerCallError when it answers with a CallError (or an answer we cannot read) and
        ChargerNotConnectedError when the connection is closed, or closes before the answer.
        `validate=False` skips the JSON-schema checks, for payloads we build ourselves and
        test against the schema (charging profiles: the hot path of load management).
        """
        action = type(payload).__name__
        seconds = self.request_timeout if timeout is None else timeout
        try:
            async with self._site.clock.timeout(seconds):
                return await self._call_while_connected(payload, validate=validate)
        except TimeoutError as err:
            raise ChargerTimeoutError(self.station_id, action, seconds) from err
        except OCPPError as err:
            raise ChargerCallError(
                self.station_id, action, err.code, err.description or ""
            ) from err
        except UnknownCallErrorCodeError as err:
            # A CallError with a code OCPP does not define: OCPP's catch-all is GenericError.
            raise ChargerCallError(self.station_id, action, "GenericError", str(err)) from err
        except ConnectionClosed as err:
            raise ChargerNotConnectedError(self.station_id) from err
        except TypeError as err:
            # An unvalidated answer that does not fit the result type.
            raise ChargerCallError(self.station_id, action, "FormatViolation", str(err)) from err

    async def _call_while_connected(self, payload: Any, *, validate: bool) -> Any:
        # The library waits for the answer even after the connection is gone; stop waiting
        # when it closes, instead of at the request timeout.
        unique_id = str(self._unique_id_generator())
        self._awaiting.add(unique_id)
        answer = asyncio.ensure_future(
            self.call(
                payload, suppress=False, unique_id=unique_id, skip_schema_validation=not validate
            )
        )
        # Wait for the reader, not the socket: frames that arrived before the close (an
        # Accepted followed by a reboot) are routed before the reader stops.
        # One future per connection, shared by every request on it: no task per request.
        try:
            await asyncio.wait((answer, self._reader_done), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._awaiting.discard(unique_id)
            if not answer.done():
                answer.cancel()
                # It ends here, so it never outlives the request (timeout or cancellation).
                await asyncio.wait((answer,))
            elif not answer.cancelled():
                # Mark its outcome as seen: when we are cancelled just as it failed (the
                # connection closing), asyncio would log "exception was never retrieved".
                answer.exception()
        if not answer.cancelled():
            return answer.result()
        raise ChargerNotConnectedError(self.station_id)

    async def _request_status(self, payload: Any, ok: frozenset[str]) -> CommandStatus:
        result = await self.request(payload)
        status = str(result.status)
        if status not in ok:
            raise ChargerRejectedError(self.station_id, type(payload).__name__, status)
        return CommandStatus(status)

    # ------------------------------------------------------------------ the charger port
    @property
    def capabilities(self) -> Capabilities | None:
        """Smart Charging abilities from its configuration keys; None until they are read."""
        station = self._site.stations.get(self.station_id)
        if station is None or not station.configuration:
            return None
        if self._capabilities is None or self._capabilities[0] != station.configuration:
            configuration = dict(station.configuration)
            self._capabilities = configuration, capabilities_from_configuration(configuration)
        return self._capabilities[1]

    def _smart_charging(self) -> Capabilities:
        capabilities = self.capabilities
        if capabilities is None:
            raise ChargerRejectedError(self.station_id, "SetChargingProfile", "NotReady")
        return capabilities

    async def set_base(self, amps: float, *, voltage: float, timeout: float) -> None:
        """Install the base profile (connector 0, stack level 0, no end)."""
        profile = base_profile(
            amps,
            capabilities=self._smart_charging(),
            now=self._site.clock.now(),
            nominal_voltage=voltage,
        )
        await self._set_profile(profile, timeout)

    async def set_limit(
        self,
        connector_id: int,
        amps: float,
        *,
        valid_to: datetime,
        phases: int,
        voltage: float,
        timeout: float,
    ) -> None:
        """Install a connector's lease profile (stack level 1) until `valid_to`."""
        profile = lease_profile(
            connector_id,
            amps,
            capabilities=self._smart_charging(),
            now=self._site.clock.now(),
            valid_to=valid_to,
            phases=phases,
            nominal_voltage=voltage,
        )
        await self._set_profile(profile, timeout)

    async def _set_profile(self, profile: call.SetChargingProfile, timeout: float) -> None:
        # The hot path of load management: profiles we build ourselves are tested against
        # the schema, so the library's validation is skipped here.
        result = await self.request(profile, timeout=timeout, validate=False)
        status = str(result.status)
        if status != "Accepted":
            raise ChargerRejectedError(self.station_id, "SetChargingProfile", status)

    async def remote_start(self, id_tag: str, connector_id: int | None = None) -> CommandStatus:
        """Ask the charger to start a session."""
        return await self._request_status(
            call.RemoteStartTransaction(id_tag=id_tag, connector_id=connector_id), _ACCEPTED
        )

    async def remote_stop(self, transaction_id: int) -> CommandStatus:
        """Ask the charger to stop a session."""
        return await self._request_status(
            call.RemoteStopTransaction(transaction_id=transaction_id), _ACCEPTED
        )

    async def reset(self, *, hard: bool) -> CommandStatus:
        """Soft or Hard reset."""
        return await self._request_status(call.Reset(type="Hard" if hard else "Soft"), _ACCEPTED)

    async def unlock(self, connector_id: int) -> CommandStatus:
        """Unlock a connector's cable."""
        return await self._request_status(
            call.UnlockConnector(connector_id=connector_id), frozenset({"Unlocked"})
        )

    async def set_availability(self, connector_id: int, *, available: bool) -> CommandStatus:
        """Operative or Inoperative, for the station (0) or a connector; Scheduled is success."""
        kind = "Operative" if available else "Inoperative"
        return await self._request_status(
            call.ChangeAvailability(connector_id=connector_id, type=kind),
            frozenset({"Accepted", "Scheduled"}),
        )

    async def trigger(
        self, message: TriggerMessage, connector_id: int | None = None
    ) -> CommandStatus:
        """Ask the charger to send one of its messages now."""
        return await self._request_status(
            call.TriggerMessage(requested_message=_TRIGGER[message], connector_id=connector_id),
            _ACCEPTED,
        )

    async def update_firmware(
        self,
        location: str,
        retrieve_at: datetime,
        *,
        retries: int | None = None,
        retry_interval: int | None = None,
    ) -> None:
        """Tell the charger to fetch and install firmware."""
        await self.request(
            call.UpdateFirmware(
                location=location,
                retrieve_date=_ocpp_time(retrieve_at),
                retries=retries,
                retry_interval=retry_interval,
            )
        )

    async def get_diagnostics(
        self,
        location: str,
        *,
        retries: int | None = None,
        retry_interval: int | None = None,
        start: datetime | None = None,
        stop: datetime | None = None,
    ) -> str | None:
        """Ask for a diagnostics upload; returns the file name the charger will upload."""
        result = await self.request(
            call.GetDiagnostics(
                location=location,
                retries=retries,
                retry_interval=retry_interval,
                start_time=_ocpp_time(start) if start else None,
                stop_time=_ocpp_time(stop) if stop else None,
            )
        )
        return result.file_name  # type: ignore[no-any-return]

    async def get_configuration(self, keys: list[str] | None = None) -> ConfigurationResult:
        """Read configuration keys (all when `keys` is empty)."""
        result = await self.request(call.GetConfiguration(key=keys or None))
        return ConfigurationResult(
            keys=list(result.configuration_key or []), unknown_keys=list(result.unknown_key or [])
        )

    async def set_configuration(self, key: str, value: str) -> CommandStatus:
        """Change one configuration key; RebootRequired counts as success."""
        status = await self._request_status(
            call.ChangeConfiguration(key=key, value=value),
            frozenset({"Accepted", "RebootRequired"}),
        )
        if key not in WRITE_ONLY_KEYS:
            self._site.configuration_read(self.station_id, [{"key": key, "value": value}])
        return status

    async def clear_cache(self) -> CommandStatus:
        """Clear the charger's authorization cache."""
        return await self._request_status(call.ClearCache(), _ACCEPTED)

    async def data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None
    ) -> tuple[str, str | None]:
        """Send vendor data; returns the charger's status and data."""
        result = await self.request(
            call.DataTransfer(vendor_id=vendor_id, message_id=message_id, data=data)
        )
        return str(result.status), result.data

    async def send_local_list(
        self, version: int, entries: Sequence[LocalListEntry], *, full: bool
    ) -> CommandStatus:
        """SendLocalList; Failed, NotSupported and VersionMismatch raise ChargerRejectedError.

        Sent without the library's schema check: a full list is thousands of entries (the
        check cost ~50 ms per 250), built by us from validated cards; every shape is checked
        against the schema in the tests instead.
        """
        result = await self.request(local_list_request(version, entries, full=full), validate=False)
        status = str(result.status)
        if status not in _ACCEPTED:
            raise ChargerRejectedError(self.station_id, "SendLocalList", status)
        return CommandStatus(status)

    async def get_local_list_version(self) -> int:
        """GetLocalListVersion."""
        result = await self.request(call.GetLocalListVersion())
        return int(result.list_version)

    # ------------------------------------------------------------------ lifecycle
    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a background job tied to this connection (cancelled when it closes)."""
        self._spawn(coro)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel_tasks(self) -> None:
        """Cancel the background jobs of this connection."""
        for task in list(self._tasks):
            task.cancel()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the websocket."""
        self.cancel_tasks()
        await self._connection.close(code=code, reason=reason)


_ACCEPTED = frozenset({"Accepted"})

_TRIGGER = {
    TriggerMessage.BOOT_NOTIFICATION: "BootNotification",
    TriggerMessage.DIAGNOSTICS_STATUS_NOTIFICATION: "DiagnosticsStatusNotification",
    TriggerMessage.FIRMWARE_STATUS_NOTIFICATION: "FirmwareStatusNotification",
    TriggerMessage.HEARTBEAT: "Heartbeat",
    TriggerMessage.METER_VALUES: "MeterValues",
    TriggerMessage.STATUS_NOTIFICATION: "StatusNotification",
}

_STATUS = {
    "Available": ConnectorStatus.AVAILABLE,
    "Preparing": ConnectorStatus.PREPARING,
    "Charging": ConnectorStatus.CHARGING,
    "SuspendedEVSE": ConnectorStatus.SUSPENDED_EVSE,
    "SuspendedEV": ConnectorStatus.SUSPENDED_EV,
    "Finishing": ConnectorStatus.FINISHING,
    "Reserved": ConnectorStatus.RESERVED,
    "Unavailable": ConnectorStatus.UNAVAILABLE,
    "Faulted": ConnectorStatus.FAULTED,
}


@contextmanager
def _refused_as_call_error() -> Iterator[None]:
    """A value the site refuses (a connector the charger lacks...): PropertyConstraintViolation."""
    try:
        yield
    except ChargerInputError as err:
        raise PropertyConstraintViolationError(
            description=f"{err.field} {err.message}"[:200]
        ) from None


def _ocpp_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _id_tag_info(decision: AuthDecision) -> IdTagInfo:
    return IdTagInfo(
        status=AuthorizationStatus(decision.status.value),
        expiry_date=_ocpp_time(decision.expires_at) if decision.expires_at else None,
        parent_id_tag=decision.parent_id_tag,
    )


def local_list_request(
    version: int, entries: Sequence[LocalListEntry], *, full: bool
) -> call.SendLocalList:
    """The SendLocalList request for `entries` (a `status` None entry removes its card)."""
    return call.SendLocalList(
        list_version=version,
        update_type="Full" if full else "Differential",
        local_authorization_list=[_local_list_entry(e) for e in entries],
    )


def _local_list_entry(entry: LocalListEntry) -> dict[str, Any]:
    data: dict[str, Any] = {"id_tag": entry.id_tag}
    if entry.status is not None:
        info: dict[str, Any] = {"status": entry.status}
        if entry.expires_at is not None:
            info["expiry_date"] = _ocpp_time(entry.expires_at)
        if entry.parent_id_tag is not None:
            info["parent_id_tag"] = entry.parent_id_tag
        data["id_tag_info"] = info
    return data
