"""The recorder: turns the Controller's session events into charge data records.

It runs on the event loop and only computes (a few dictionary updates per event); the store's
writer thread does the I/O. A record is written when its session starts (so a crash keeps it
open), at most every `update_interval` seconds while register samples arrive, and when it ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import logging
from typing import TYPE_CHECKING, Any
import uuid

from .. import limits
from ..events import SessionEnded, SessionEndUnknown, SessionStarted, StationUpdated
from ..site import REASON_FORCED, REASON_NO_SUCH_CONNECTOR, REASON_SUPERSEDED
from .record import EndedBy, Flag, SessionRecord, SessionStatus
from .tou import NO_PERIOD, NO_TOU, TouCalendar, split_energy

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..clock import Clock
    from ..events import ControllerEvent
    from ..model import Transaction
    from ..site import Site
    from .store import SessionStore

_LOGGER = logging.getLogger(__name__)

UPDATE_INTERVAL_S = 60.0
CHARGING_THRESHOLD_W = 200.0
"""Average power above which an interval between two register samples counts as charging."""
_YEAR_2000 = datetime(2000, 1, 1, tzinfo=UTC)
_FUTURE_SLACK = timedelta(days=1)

type Key = tuple[str, int]
"""(station id, transaction id)."""
type StartKey = tuple[str, int, str, float, datetime]


@dataclass(slots=True)
class _Open:
    record: SessionRecord
    last_at: datetime
    last_wh: float
    samples: int = 0
    written_at: float = float("-inf")


class SessionRecorder:
    """Keeps the session store up to date from the event stream."""

    def __init__(
        self,
        site: Site,
        store: SessionStore,
        *,
        clock: Clock,
        tou: Callable[[], TouCalendar | None] | None = None,
        comment_of: Callable[[str], str | None] | None = None,
        update_interval: float = UPDATE_INTERVAL_S,
        charging_threshold_w: float = CHARGING_THRESHOLD_W,
    ) -> None:
        self._site = site
        self.store = store
        self._clock = clock
        self._tou = tou
        self._comment_of = comment_of
        self._update_interval = update_interval
        self._threshold_w = charging_threshold_w
        self._open: dict[Key, _Open] = {}
        self._starts: dict[StartKey, Key] = {}
        self._closed: dict[tuple[str, int, datetime | None], SessionRecord] = {}
        self.last: dict[tuple[str, int], SessionRecord] = {}
        """The last ended session of each (station, connector)."""
        self._listeners: list[Callable[[SessionRecord], None]] = []

    # ------------------------------------------------------------------ wiring
    @property
    def calendar(self) -> TouCalendar:
        """The TOU calendar in force (none: every Wh is NoPeriod)."""
        calendar = self._tou() if self._tou is not None else None
        return calendar if calendar is not None else NO_TOU

    def subscribe(self, listener: Callable[[SessionRecord], None]) -> Callable[[], None]:
        """Call `listener` with every record that ends."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def restore(self) -> None:
        """Resume the sessions the store has open and reserve the ids it used (before start).

        Without a reachable database the recorder starts empty; records still flow to the buffer.
        """
        if not self.store.available:
            await self.store.run(self.store.open)
        if not self.store.available:
            return
        records, highest, last = await self.store.run(
            lambda: (
                self.store.open_records(),
                self.store.max_transaction_id(),
                self.store.last_closed(),
            )
        )
        self.last.update(last)
        for record in records:
            key = (record.station_id, record.transaction_id)
            state = record.state or {}
            last_at = _parse(state.get("last_at")) or record.started_at
            self._open[key] = _Open(
                record,
                last_at,
                float(state.get("last_wh", record.meter_start_wh)),
                int(state.get("samples", 0)),
            )
            self._starts[_start_key(record)] = key
        self._site.reserve_transaction_ids(highest + 1)
        self._site.known_start = self._known_start

    def _known_start(
        self, station_id: str, connector_id: int, id_tag: str, meter_wh: float, at: datetime
    ) -> int | None:
        key = self._starts.get((station_id, connector_id, id_tag, meter_wh, at))
        if key is None or key not in self._open:
            return None
        return key[1]

    # ------------------------------------------------------------------ events
    def on_event(self, event: ControllerEvent) -> None:
        """The Controller's event stream (subscribe with `kinds=RECORDER_EVENTS`)."""
        match event:
            case SessionStarted(station_id=sid, transaction=tx):
                self._started(sid, tx)
            case StationUpdated(station_id=sid, connector_id=int() as cid):
                self._sampled(sid, cid)
            case SessionEnded(station_id=sid, transaction=tx):
                self.record_of(sid, tx)
            case SessionEndUnknown():
                self._orphan(event)
            case _:
                pass

    def _started(self, station_id: str, tx: Transaction) -> None:
        key = (station_id, tx.transaction_id)
        existing = self._open.get(key)
        if existing is not None and existing.record.connector_id == tx.connector_id:
            return  # a replay after a restart: the same record goes on
        now = self._clock.now()
        station = self._site.stations.get(station_id)
        record = SessionRecord(
            session_id=uuid.uuid4().hex,
            transaction_id=tx.transaction_id,
            station_id=station_id,
            connector_id=tx.connector_id,
            id_tag=tx.id_tag,
            started_at=tx.started_at,
            start_received_at=tx.received_at or now,
            meter_start_wh=tx.meter_start_wh,
            zone_id=station.config.zone_id if station is not None else None,
            card_comment=self._comment(tx.id_tag),
            flags=_time_flags(tx.started_at, now),
            updated_at=now,
        )
        self._open[key] = _Open(record, tx.started_at, tx.meter_start_wh)
        self._starts[_start_key(record)] = key
        self._write(self._open[key])

    def _comment(self, id_tag: str) -> str | None:
        if self._comment_of is None:
            return None
        try:
            return self._comment_of(id_tag)
        except Exception:
            _LOGGER.exception("Card comment lookup failed for a session")
            return None

    def _ensure(self, station_id: str, tx: Transaction) -> _Open:
        """The open record of a session (created for one the site restored but we never saw)."""
        key = (station_id, tx.transaction_id)
        if key not in self._open:
            self._started(station_id, tx)
        return self._open[key]

    def _sampled(self, station_id: str, connector_id: int) -> None:
        station = self._site.stations.get(station_id)
        connector = station.connectors.get(connector_id) if station is not None else None
        tx = connector.transaction if connector is not None else None
        if connector is None or tx is None:
            return
        register = connector.energy_wh
        sample = connector.measurements.get(("Energy.Active.Import.Register", None))
        if register is None or tx.register_wh is None:
            return
        state = self._ensure(station_id, tx)
        at = sample.timestamp if sample is not None else self._clock.now()
        if state.samples == 0 and tx.charger_meter_start_wh is not None:
            state.last_wh = tx.meter_start_wh  # the site moved the start to the first sample
        if register == state.last_wh and at <= state.last_at:
            return
        self._segment(state, at, register, connector.power_w)
        if self._clock.monotonic() - state.written_at >= self._update_interval:
            self._write(state)

    def _segment(self, state: _Open, at: datetime, register: float, power: float | None) -> None:
        """Account the energy between the last register sample and this one."""
        record = state.record
        delta = register - state.last_wh
        seconds = (at - state.last_at).total_seconds()
        if delta < 0:
            return  # the site refuses registers that go down; nothing to count
        if delta > limits.ENERGY_SLACK_WH + max(seconds, 0.0) / 3600.0 * limits.MAX_POWER_W:
            record.flags |= {Flag.ENERGY_JUMP}
            _LOGGER.warning(
                "%r: session %s: the energy register jumped by %.0f Wh in %.0f s; not counted",
                record.station_id,
                record.transaction_id,
                delta,
                seconds,
            )
        else:
            split_energy(self.calendar, state.last_at, max(at, state.last_at), delta, record.tou_wh)
            if seconds > 0:
                average = delta / seconds * 3600.0
                if average >= self._threshold_w:
                    record.charging_s += seconds
                record.peak_power_w = max(record.peak_power_w or 0.0, average)
        if power is not None:
            record.peak_power_w = max(record.peak_power_w or 0.0, power)
        state.samples += 1
        state.last_wh = register
        state.last_at = max(at, state.last_at)
        record.energy_wh = sum(record.tou_wh.values())  # live figure of an open session

    def _write(self, state: _Open) -> None:
        record = state.record
        record.updated_at = self._clock.now()
        record.energy_wh = sum(record.tou_wh.values())
        record.state = {
            "last_at": state.last_at.isoformat(),
            "last_wh": state.last_wh,
            "samples": state.samples,
        }
        state.written_at = self._clock.monotonic()
        self.store.put(record)

    def record_of(self, station_id: str, tx: Transaction) -> SessionRecord:
        """Close the record of an ended session (idempotent: the same record again)."""
        closed_key = (station_id, tx.transaction_id, tx.stopped_at)
        if (done := self._closed.get(closed_key)) is not None:
            return done
        state = self._ensure(station_id, tx)
        del self._open[(station_id, tx.transaction_id)]
        self._starts.pop(_start_key(state.record), None)
        record = state.record
        now = self._clock.now()
        stopped_at = tx.stopped_at or now
        final = tx.final_energy_wh
        if final is not None and Flag.ENERGY_JUMP not in record.flags:
            if state.samples == 0:
                record.flags |= {Flag.START_ONLY}
            end_register = tx.meter_start_wh + final
            if end_register > state.last_wh:
                self._segment(state, stopped_at, end_register, None)
            counted = sum(record.tou_wh.values())
            if abs(final - counted) > 0.001:  # noqa: PLR2004  # a thousandth of a Wh
                # The site's energy (its meter stop rules) wins; the split keeps its shape.
                period = self.calendar.period_at(stopped_at) or NO_PERIOD
                record.tou_wh[period] = record.tou_wh.get(period, 0.0) + final - counted
        record.energy_wh = sum(record.tou_wh.values())
        if tx.meter_stop_wh is not None:
            if tx.meter_stop_wh < tx.reported_meter_start_wh:
                record.flags |= {Flag.METER_STOP_BELOW_START}
            if abs((tx.meter_stop_wh - tx.meter_start_wh) - record.energy_wh) > (
                limits.ENERGY_SLACK_WH
            ):
                record.flags |= {Flag.METER_STOP_IGNORED}
        record.meter_stop_wh = tx.meter_stop_wh
        record.meter_start_wh = tx.meter_start_wh
        record.stopped_at = stopped_at
        record.stop_received_at = now
        record.stop_reason = tx.stop_reason
        record.ended_by = _ended_by(tx.stop_reason)
        record.status = SessionStatus.CLOSED
        record.flags |= _time_flags(stopped_at, now)
        record.plugged_s = _duration(record)
        record.state = None
        record.updated_at = now
        self.store.put(record)
        self._closed[closed_key] = record
        if len(self._closed) > 1000:  # noqa: PLR2004  # a few late duplicate calls, not a cache
            self._closed.pop(next(iter(self._closed)))
        self.last[(station_id, record.connector_id)] = record
        self._tell(record)
        return record

    def _orphan(self, event: SessionEndUnknown) -> None:
        now = self._clock.now()
        key = (event.station_id, event.transaction_id)
        state = self._open.pop(key, None)
        if state is not None:
            # Open in this store, lost by the site (its registry was older): close it here.
            self._starts.pop(_start_key(state.record), None)
            record = state.record
            if event.meter_stop_wh >= state.last_wh:
                self._segment(state, event.stopped_at, event.meter_stop_wh, None)
            record.flags |= {Flag.CLOSED_AFTER_RESTART}
            record.status = SessionStatus.CLOSED
            record.ended_by = _ended_by(event.reason)
        else:
            record = SessionRecord(
                session_id=uuid.uuid4().hex,
                transaction_id=event.transaction_id,
                station_id=event.station_id,
                connector_id=0,
                id_tag=event.id_tag or "",
                started_at=event.stopped_at,
                start_received_at=now,
                meter_start_wh=event.meter_stop_wh,
                status=SessionStatus.ORPHAN,
                ended_by=_ended_by(event.reason),
            )
        record.energy_wh = sum(record.tou_wh.values()) if state is not None else None
        record.meter_stop_wh = event.meter_stop_wh
        record.stopped_at = event.stopped_at
        record.stop_received_at = now
        record.stop_reason = event.reason
        record.flags |= _time_flags(event.stopped_at, now)
        record.plugged_s = _duration(record) if state is not None else None
        record.state = None
        record.updated_at = now
        if state is not None:
            self.store.put(record)
            self.last[(record.station_id, record.connector_id)] = record
            self._tell(record)
        else:
            self.store.put_orphan(record)

    def _tell(self, record: SessionRecord) -> None:
        for listener in list(self._listeners):
            try:
                listener(record)
            except Exception:
                _LOGGER.exception("Session record listener failed")

    def open_record(self, station_id: str, transaction_id: int) -> SessionRecord | None:
        """The live record of an open session."""
        state = self._open.get((station_id, transaction_id))
        return None if state is None else state.record


RECORDER_EVENTS = (SessionStarted, SessionEnded, SessionEndUnknown, StationUpdated)
"""The events `SessionRecorder.on_event` needs."""


def _start_key(record: SessionRecord) -> StartKey:
    return (
        record.station_id,
        record.connector_id,
        record.id_tag,
        record.meter_start_wh,
        record.started_at,
    )


def _ended_by(reason: str | None) -> EndedBy:
    if reason == REASON_FORCED:
        return EndedBy.FORCED
    if reason in (REASON_SUPERSEDED, REASON_NO_SUCH_CONNECTOR):
        return EndedBy.LOST
    if reason == "Remote":
        return EndedBy.REMOTE
    return EndedBy.CHARGER


def _time_flags(at: datetime, now: datetime) -> frozenset[Flag]:
    if at < _YEAR_2000:
        return frozenset({Flag.TIME_BEFORE_2000})
    if at > now + _FUTURE_SLACK:
        return frozenset({Flag.TIME_IN_FUTURE})
    return frozenset()


def _duration(record: SessionRecord) -> float | None:
    """Plugged time: on the charger's clock, or on ours when the charger's is implausible."""
    bad = {Flag.TIME_BEFORE_2000, Flag.TIME_IN_FUTURE}
    if record.flags & bad or record.stopped_at is None:
        if record.stop_received_at is None:
            return None
        return max((record.stop_received_at - record.start_received_at).total_seconds(), 0.0)
    return max((record.stopped_at - record.started_at).total_seconds(), 0.0)


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
