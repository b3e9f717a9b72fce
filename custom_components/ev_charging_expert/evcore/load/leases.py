"""Leases: each connector's setpoint, sent through the charger port with a limited validity.

A lease above the station's base ends early (`DeliverySettings.short_lease_duration`), so
that when we stop renewing, every charger that must fall down to its base does so before any
charger may rise to it. A charger that does not confirm a lease in time is disconnected: its
lease may end unseen, and offline it is counted conservatively until it comes back.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial
import logging
import math
from typing import TYPE_CHECKING

from .control import TARGET_EPSILON, UNANSWERED, answer_of, mark_rejected
from .delivery import LeaseState, Send, record_answer, record_sent
from .observe import AnswerBooked
from .snapshot import ev_phases

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ..charger import Charger
    from ..site import Site
    from .control import ChargerControl, LoadState
    from .observe import LoadObserver

_LOGGER = logging.getLogger(__name__)


class LeaseSender:
    """Sends setpoints as leases and books the chargers' answers."""

    observer: LoadObserver | None = None  # set by LoadManager.observe

    def __init__(
        self,
        site: Site,
        state: LoadState,
        *,
        request_run: Callable[[], None],
        request_replan: Callable[[], None],
    ) -> None:
        self._site = site
        self._state = state
        self._request_run = request_run
        self._request_replan = request_replan
        self._closing: set[asyncio.Task[None]] = set()

    def send(self, send: Send, now: float) -> None:
        """Send one setpoint (a decrease, an increase or a renewal) as a lease."""
        state = self._state
        station_id, connector_id = send.connector_id
        charger = self._site.chargers.get(station_id)
        control = state.controls.get(station_id)
        if charger is None or control is None or control.capabilities is None:
            return
        wall = self._site.clock.now()
        lease = state.leases.setdefault(send.connector_id, LeaseState())
        # Read after `wall`: the lease's end as we count it is never before its validTo.
        record_sent(lease, send, self._site.clock.monotonic())
        station = self._site.stations[station_id]
        phases = ev_phases(station.connectors.get(connector_id)) or 1
        # A lease above the base ends early (see DeliverySettings.short_lease_duration).
        base = control.base.committed(station.config.connector(connector_id).rating)
        duration = (
            state.delivery.lease_duration
            if send.amps <= base + TARGET_EPSILON
            else state.delivery.short_lease_duration
        )
        limit = partial(
            charger.set_limit,
            connector_id,
            send.amps,
            valid_to=wall + timedelta(seconds=duration),
            phases=phases,
            voltage=state.settings.nominal_voltage,
            timeout=state.request_timeout,
        )
        charger.spawn(self._deliver(send, charger, control, lease, limit))
        if self.observer is not None:
            self.observer.limit_sent(send)

    async def _deliver(
        self,
        send: Send,
        charger: Charger,
        control: ChargerControl,
        lease: LeaseState,
        limit: Callable[[], Awaitable[None]],
    ) -> None:
        station_id = send.connector_id.station_id
        answer = UNANSWERED
        try:
            answer = await answer_of(limit())
        finally:
            # Also when the job is cancelled (its connection closed): the charger may or
            # may not have applied it.
            if answer.refusal is not None:
                mark_rejected(self._site, station_id, control, answer.refusal)
            elif answer.accepted is None:
                _LOGGER.info("%s: setpoint not confirmed: %s", station_id, answer.error)
            record_answer(lease, accepted=answer.accepted, now=self._site.clock.monotonic())
            if self.observer is not None:
                booked = AnswerBooked(
                    send.connector_id, answer.accepted, lease.held, self._site.clock.monotonic()
                )
                self.observer.answer_booked(booked)
            if answer.accepted is None:
                self._drop(station_id, charger)
            if answer.accepted is False or (
                answer.accepted
                and (station_id in self._state.bases_waiting or self._unconfirmed(send))
            ):
                # Counted at its rating now / a base may rise now / the room it was counted
                # at on phases where its limit was not planned is free again.
                self._request_run()
            elif self._state.waiting or answer.accepted is None or self._target_moved(send, lease):
                # A confirmed decrease may make room for a waiting increase; an unanswered
                # change is planned again (at the higher value it now counts at); a target
                # that moved while this change was in flight is delivered now.
                self._request_replan()

    def _drop(self, station_id: str, charger: Charger) -> None:
        """Close the connection of a charger that did not confirm a lease.

        While it stays connected it counts at its lease, but that lease may end unseen (its
        renewals are not confirmed) and the charger then falls back to its base, which can be
        more. Offline, it counts at the higher of the two until its lease ends; it reconnects
        and gets its base again.
        """
        station = self._site.stations.get(station_id)
        if (
            self._state.stopped
            or station is None
            or not station.connected
            or self._site.chargers.get(station_id) is not charger
        ):
            return
        _LOGGER.warning(
            "%s did not confirm a charging profile in time; closing its connection", station_id
        )
        task = asyncio.get_running_loop().create_task(
            charger.close(code=1011, reason="Charging profile not confirmed")
        )
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _unconfirmed(self, send: Send) -> bool:
        last = self._state.last
        previous = last.by_key.get(send.connector_id) if last is not None else None
        return previous is not None and previous.unconfirmed > 0

    def _target_moved(self, send: Send, lease: LeaseState) -> bool:
        last = self._state.last
        if last is None or lease.held is None:
            return False
        target = last.targets.get(send.connector_id)
        return target is not None and abs(target - lease.held) > TARGET_EPSILON

    def renew_around_base(self, station_id: str, before: float, after: float) -> bool:
        """Renew now the leases of a station whose validity the new base changes.

        A lease above the base ends early (DeliverySettings.short_lease_duration); one that
        is above the old base and not the new one, or the other way round, is renewed.
        """
        renewed = False
        for lease in self._state.station_leases(station_id):
            held = lease.held
            if held is not None and (held > before + TARGET_EPSILON) != (
                held > after + TARGET_EPSILON
            ):
                lease.sent_at = -math.inf
                renewed = True
        return renewed
