"""Bases: each controlled station's fallback limit (its degraded current) that never expires.

The bases are what the chargers draw once nobody renews their leases, all at once: in every
zone they must fit its capacity without us (`fallback_capacity`) — also while they change.
So, like setpoints: a lower base goes out at once; a higher one only when every connector of
the station holds a confirmed lease (a connector without one draws on the base right now) and
it fits with every other station at its committed base (the higher of the old and the new
while a change is in flight; its rating while none was ever confirmed, or when we cannot
control it). Until then the station keeps the base it has.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial
import logging
from typing import TYPE_CHECKING

from ..keys import ConnectorKey
from ..model import Registration
from .control import TARGET_EPSILON, UNANSWERED, UNCONTROLLED, Control, answer_of, mark_rejected
from .degraded import fallback_capacity, zone_path
from .delivery import LeaseState, Send, record_answer, record_sent
from .observe import AnswerBooked
from .snapshot import ratings

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ..charger import Charger
    from ..clock import Cancelable
    from ..model import StationState
    from ..site import Site
    from .control import ChargerControl, LoadState
    from .leases import LeaseSender
    from .observe import LoadObserver

_LOGGER = logging.getLogger(__name__)

BASES_DEFER = 1.0  # s after a run that sent setpoints, the bases follow
RELEASE_TIMEOUT = 10.0  # s to wait for a station being removed to take 0 A


class BaseKeeper:
    """Keeps every controlled station's base at its degraded current, safely."""

    observer: LoadObserver | None = None  # set by LoadManager.observe

    def __init__(
        self,
        site: Site,
        state: LoadState,
        leases: LeaseSender,
        *,
        request_run: Callable[[], None],
        request_replan: Callable[[], None],
    ) -> None:
        self._site = site
        self._state = state
        self._leases = leases
        self._request_run = request_run
        self._request_replan = request_replan
        self._timer: Cancelable | None = None

    def defer(self) -> None:
        """Deliver the bases a moment later (setpoints went out in this run)."""
        if self._timer is None and not self._state.stopped:
            self._timer = self._site.clock.call_later(BASES_DEFER, self._due)

    def stop(self) -> None:
        """Cancel a deferred delivery."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _due(self) -> None:
        self._timer = None
        if not self._state.stopped:
            self.deliver()

    def deliver(self) -> None:
        """Give every controlled station its degraded current as its base."""
        state = self._state
        loads: dict[str, float] | None = None  # only needed for a raise: most runs have none
        now = self._site.clock.monotonic()
        state.bases_waiting.clear()
        state.bases_blocked = False
        for station_id, control in state.controls.items():
            if (
                control.control is not Control.CONTROLLED
                or control.capabilities is None
                or control.base.sent is not None
            ):
                continue
            station = self._site.stations.get(station_id)
            charger = self._site.chargers.get(station_id)
            if station is None or charger is None or not station.connected:
                continue
            want = state.degraded.per_connector.get(station_id, 0.0)
            if (
                control.base_installed
                and control.base.held is not None
                and abs(want - control.base.held) <= TARGET_EPSILON
            ):
                continue
            station_ratings = ratings(station)
            delta = len(station_ratings) * want - sum(
                control.base.committed(r) for r in station_ratings
            )
            if delta > TARGET_EPSILON:
                loads = loads if loads is not None else self._base_loads()
                if not self._may_raise(station, delta, loads, now):
                    if control.base_installed or control.base.held is None:
                        continue  # wait for room, or for its leases
                    want = control.base.held  # (re)install what it holds; raise later
            self._send(station_id, control, charger, want, now)

    def _may_raise(
        self, station: StationState, delta: float, loads: dict[str, float], now: float
    ) -> bool:
        """Whether a station's bases may rise by `delta` (A, all connectors); book it if so.

        A connector without a lease in force draws on the base now: raising the base would
        raise it, unchecked. So only above confirmed leases, and only into fallback room.
        """
        state = self._state
        if not self._leases_in_force(station, now):
            state.bases_waiting.add(station.station_id)  # its lease answers: run again
            return False
        zone_id = station.config.zone_id
        path = zone_path(zone_id, state.zones) if zone_id is not None else []
        if any(loads[z] + delta > fallback_capacity(state.zones[z]) + TARGET_EPSILON for z in path):
            state.bases_blocked = True  # the others' lower bases, once confirmed, make room
            return False
        for z in path:
            loads[z] += delta
        return True

    def _leases_in_force(self, station: StationState, now: float) -> bool:
        """Whether every connector of the station holds a confirmed lease that still runs."""
        state = self._state
        for connector in station.charge_points:
            lease = state.leases.get(ConnectorKey(station.station_id, connector.connector_id))
            if (
                lease is None
                or lease.held is None
                or lease.sent is not None
                or now >= lease.floor_at + state.delivery.short_lease_duration
            ):
                return False
        return True

    def _base_loads(self) -> dict[str, float]:
        """Per zone: what its stations draw with every one of them on its base (committed)."""
        state = self._state
        loads = dict.fromkeys(state.zones, 0.0)
        for station in self._site.stations.values():
            zone_id = station.config.zone_id
            if station.registration is not Registration.ACCEPTED or zone_id not in state.zones:
                continue
            control = state.controls.get(station.station_id)
            station_ratings = ratings(station)
            if control is None or control.control in UNCONTROLLED:
                amps = sum(station_ratings)  # no base we know of: its rating
            else:
                amps = sum(control.base.committed(r) for r in station_ratings)
            for z in zone_path(zone_id, state.zones):
                loads[z] += amps
        return loads

    def _send(
        self, station_id: str, control: ChargerControl, charger: Charger, amps: float, now: float
    ) -> None:
        control.base_seq += 1
        record_sent(control.base, Send(ConnectorKey(station_id, 0), amps, "base"), now)
        base = partial(
            charger.set_base,
            amps,
            voltage=self._state.settings.nominal_voltage,
            timeout=self._state.request_timeout,
        )
        charger.spawn(self._deliver(station_id, control, control.base_seq, base))
        if self.observer is not None:
            self.observer.limit_sent(Send(ConnectorKey(station_id, 0), amps, "base"))

    async def _deliver(
        self,
        station_id: str,
        control: ChargerControl,
        seq: int,
        base: Callable[[], Awaitable[None]],
    ) -> None:
        answer = UNANSWERED
        try:
            answer = await answer_of(base())
        finally:
            if answer.refusal is not None:
                mark_rejected(self._site, station_id, control, answer.refusal)
            elif answer.accepted is None:
                _LOGGER.info("%s: base profile not confirmed: %s", station_id, answer.error)
            self._book(station_id, control, seq, accepted=answer.accepted)

    def _book(
        self, station_id: str, control: ChargerControl, seq: int, *, accepted: bool | None
    ) -> None:
        renew = first = False
        if seq == control.base_seq:
            before, first = control.base.held, not control.base_installed
            record_answer(control.base, accepted=accepted, now=self._site.clock.monotonic())
            if self.observer is not None:
                key, held = ConnectorKey(station_id, 0), control.base.held
                now = self._site.clock.monotonic()
                self.observer.answer_booked(AnswerBooked(key, accepted, held, now))
            if accepted:
                control.base_installed = True
                if before is not None and control.base.held is not None:
                    renew = self._leases.renew_around_base(station_id, before, control.base.held)
        if not accepted or first or self._state.bases_blocked:
            # Controllable now, counted at its rating now, retried, or room for a base.
            self._request_run()
        elif renew:
            self._request_replan()

    # ------------------------------------------------------------------ removal
    async def release(self, station_id: str) -> None:
        """A station is about to be removed: bring its base and its leases to 0 A.

        It will not hear from us again, so without this it would keep its base (its degraded
        current) for good. Confirmed 0 A leases also give its room away at once; what is not
        confirmed keeps counting until its lease ends (see SnapshotBuilder._carry_over).
        """
        state = self._state
        control = state.controls.get(station_id)
        station = self._site.stations.get(station_id)
        charger = self._site.chargers.get(station_id)
        if (
            control is None
            or control.capabilities is None
            or control.control is not Control.CONTROLLED
            or station is None
            or charger is None
        ):
            if control is not None and control.base.held != 0.0:
                _LOGGER.warning(
                    "%s is removed while we cannot reach it: it may keep drawing its "
                    "degraded current (its base profile)",
                    station_id,
                )
            return
        wall, now = self._site.clock.now(), self._site.clock.monotonic()
        voltage = state.settings.nominal_voltage
        control.base_seq += 1  # an answer to an older base send no longer counts
        record_sent(control.base, Send(ConnectorKey(station_id, 0), 0.0, "base"), now)
        zeros: list[tuple[Callable[[], Awaitable[None]], LeaseState]] = [
            (partial(charger.set_base, 0.0, voltage=voltage, timeout=RELEASE_TIMEOUT), control.base)
        ]
        valid_to = wall + timedelta(seconds=state.delivery.lease_duration)
        for connector in station.charge_points:
            key = ConnectorKey(station_id, connector.connector_id)
            lease = state.leases.get(key)
            if lease is None or lease.sent is not None:
                continue  # never sent (it holds the base), or a change already in flight
            record_sent(lease, Send(key, 0.0, "decrease"), now)
            zero = partial(
                charger.set_limit,
                connector.connector_id,
                0.0,
                valid_to=valid_to,
                phases=1,
                voltage=voltage,
                timeout=RELEASE_TIMEOUT,
            )
            zeros.append((zero, lease))
        await asyncio.gather(*(self._release_one(send, lease) for send, lease in zeros))
        if control.base.held != 0.0:
            _LOGGER.warning(
                "%s is removed without confirming a 0 A base profile: it may keep drawing "
                "its degraded current",
                station_id,
            )

    async def _release_one(self, send: Callable[[], Awaitable[None]], lease: LeaseState) -> None:
        answer = UNANSWERED
        try:
            answer = await answer_of(send())
        finally:
            record_answer(lease, accepted=answer.accepted, now=self._site.clock.monotonic())
