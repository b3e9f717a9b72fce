"""State export: the Controller's event stream turned into retained documents, on change.

Transport-free: the exporter calls an injected `publish(topic, payload, retain=)` (HA's mqtt
integration in production, a list in tests and benchmarks) on the injected clock.

- Which objects: the site, every zone, every accepted station and its connectors (a pending or
  removed charger is nobody's business outside). An object that goes away gets an empty
  retained message, which deletes its retained topic on the broker.
- When: an event marks the objects it touches as dirty; a dirty object is published at once
  unless it was published less than `min_interval` seconds ago, then at the end of that
  interval. So a charger's MeterValues (one event per message, whatever its number of fields)
  and any burst of events cost at most one message per object per interval.
- Only on change: the document is compared with the last one published on its topic; an
  identical one is not sent again (an allocation run that changed nothing says nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
import heapq
import json
import logging
import math
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from ..events import (
    AllocationUpdated,
    MeterUpdated,
    SessionEnded,
    SessionStarted,
    StationAccepted,
    StationAdded,
    StationConfigured,
    StationRemoved,
    StationUpdated,
)
from ..model import Registration
from .documents import connector_document, site_document, station_document, zone_document

if TYPE_CHECKING:
    from ..clock import Cancelable, Clock
    from ..controller import Controller
    from ..events import ControllerEvent

_LOGGER = logging.getLogger(__name__)

DEFAULT_PREFIX = "ev_charging_expert"
DEFAULT_MIN_INTERVAL = 1.0
ONLINE = "online"
OFFLINE = "offline"

type ObjectKey = tuple[str, ...]
"""("site",), ("zone", zone_id), ("station", station_id), ("connector", station_id, "n")."""

SITE: ObjectKey = ("site",)
_RESEND = "\x00"  # never a JSON document: whatever is built next differs from it


class Publish(Protocol):
    """Send one message (the transport's own errors are its business: never raise)."""

    def __call__(self, topic: str, payload: str, *, retain: bool) -> None:
        """Publish `payload` on `topic`."""


@dataclass(frozen=True, slots=True)
class ExportSettings:
    """Where and how often."""

    prefix: str = DEFAULT_PREFIX
    min_interval: float = DEFAULT_MIN_INTERVAL
    """Seconds between two messages about the same object (at most)."""


def segment(value: str) -> str:
    """A free-text id as one topic level: '/', '+', '#' and the like percent-encoded."""
    return quote(value, safe="")


class Topics:
    """Every topic under a prefix (docs/mqtt.md lists them)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.rstrip("/")
        self.availability = f"{self.prefix}/availability"
        self.site = f"{self.prefix}/site"
        self.command_filter = f"{self.prefix}/command/+"
        self.result = f"{self.prefix}/result"

    def command(self, name: str) -> str:
        """The topic a command is sent to."""
        return f"{self.prefix}/command/{name}"

    def command_name(self, topic: str) -> str | None:
        """The command a topic names (None: not a command topic of ours)."""
        head = f"{self.prefix}/command/"
        if not topic.startswith(head):
            return None
        name = topic[len(head) :]
        return name if name and "/" not in name else None

    def of(self, key: ObjectKey) -> str:
        """The state topic of an object."""
        kind, *ids = key
        if kind == "site":
            return self.site
        return "/".join((self.prefix, kind, *(segment(i) for i in ids)))


class StateExporter:
    """Publishes the site's state documents on change, coalesced per object."""

    def __init__(
        self,
        controller: Controller,
        publish: Publish,
        settings: ExportSettings | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.controller = controller
        self.settings = settings or ExportSettings()
        self.topics = Topics(self.settings.prefix)
        self._publish = publish
        self._clock = clock or controller.clock
        self._last_sent: dict[ObjectKey, float] = {}
        self._payloads: dict[ObjectKey, str] = {}
        self._dirty: set[ObjectKey] = set()
        self._queue: list[tuple[float, ObjectKey]] = []
        self._timer: Cancelable | None = None
        self._timer_due = math.inf
        self._unsubscribe: Any = None
        self.messages = 0
        """State messages sent since start (availability and results not counted)."""
        self.skipped = 0
        """Documents built and found unchanged (not sent)."""

    # ------------------------------------------------------------------ lifecycle
    @property
    def running(self) -> bool:
        """Between `start` and `stop`."""
        return self._unsubscribe is not None

    def start(self) -> None:
        """Say online and publish every object (idempotent)."""
        if self._unsubscribe is None:
            self._unsubscribe = self.controller.subscribe(self._on_event)
        self._publish(self.topics.availability, ONLINE, retain=True)
        self.republish()

    def stop(self, *, clear: bool = False) -> None:
        """Say offline and stop; retained states stay (with `offline` next to them).

        `clear`: delete every retained topic instead (availability included), for a prefix
        that is given up.
        """
        if self._unsubscribe is None:
            return
        self._unsubscribe()
        self._unsubscribe = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_due = math.inf
        self._dirty.clear()
        self._queue.clear()
        if clear:
            for key in self._payloads:
                self._publish(self.topics.of(key), "", retain=True)
            self._payloads.clear()
        self._publish(self.topics.availability, "" if clear else OFFLINE, retain=True)

    def republish(self) -> None:
        """Send everything again (the broker may have lost its retained messages)."""
        self._payloads = dict.fromkeys(self._payloads, _RESEND)
        for key in self._objects():
            self.mark(key)

    def _objects(self) -> list[ObjectKey]:
        keys: list[ObjectKey] = [SITE]
        keys += [("zone", zone_id) for zone_id in self.controller.zone_views()]
        for station_id, station in self.controller.site.stations.items():
            if station.registration is Registration.ACCEPTED:
                keys.append(("station", station_id))
                keys += [("connector", station_id, str(c)) for c in _connector_ids(station)]
        keys += [key for key in self._payloads if key not in keys]  # gone since: cleared
        return keys

    # ------------------------------------------------------------------ events
    def _on_event(self, event: ControllerEvent) -> None:  # noqa: C901  # one case per event
        match event:
            case StationUpdated(station_id=sid, connector_id=cid):
                if cid:
                    self.mark(("connector", sid, str(cid)))
                else:
                    self._mark_station(sid, with_connectors=True)
            case StationAdded(station_id=sid) | StationAccepted(station_id=sid):
                self._mark_station(sid, with_connectors=True)
            case StationConfigured(station_id=sid) | StationRemoved(station_id=sid):
                self._mark_station(sid, with_connectors=True)
            case (
                SessionStarted(station_id=sid, transaction=t)
                | SessionEnded(station_id=sid, transaction=t)
            ):
                self.mark(("connector", sid, str(t.connector_id)))
            case AllocationUpdated():
                for key in event.connectors:
                    self.mark(("connector", key.station_id, str(key.connector_id)))
                for zone_id in event.zones:
                    self.mark(("zone", zone_id))
                for station_id in event.stations:
                    self.mark(("station", station_id))
            case MeterUpdated():
                return  # the zone changes (if it does) with the allocation run that follows
            case _:
                pass  # operating rules and the like: the site document carries them
        self.mark(SITE)

    def _mark_station(self, station_id: str, *, with_connectors: bool) -> None:
        self.mark(("station", station_id))
        if not with_connectors:
            return
        station = self.controller.site.stations.get(station_id)
        connectors = set(_connector_ids(station)) if station is not None else set()
        connectors |= {
            int(k[2]) for k in self._payloads if k[0] == "connector" and k[1] == station_id
        }
        for connector_id in connectors:
            self.mark(("connector", station_id, str(connector_id)))

    # ------------------------------------------------------------------ coalescing
    def mark(self, key: ObjectKey) -> None:
        """The object may have changed: publish it now or when its interval is over."""
        if self._unsubscribe is None or key in self._dirty:
            return
        now = self._clock.monotonic()
        due = max(now, self._last_sent.get(key, -math.inf) + self.settings.min_interval)
        self._dirty.add(key)
        heapq.heappush(self._queue, (due, key))
        if due < self._timer_due:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_due = due
            self._timer = self._clock.call_later(due - now, self.flush)

    def flush(self) -> None:
        """Publish every dirty object whose interval is over; wait for the others."""
        self._timer = None
        self._timer_due = math.inf
        now = self._clock.monotonic()
        while self._queue and self._queue[0][0] <= now + 1e-9:
            _, key = heapq.heappop(self._queue)
            self._dirty.discard(key)
            try:
                self._send(key, now)
            except Exception:
                _LOGGER.exception("Could not export %s", key)
        if self._queue:
            due = self._queue[0][0]
            self._timer_due = due
            self._timer = self._clock.call_later(due - now, self.flush)

    def _send(self, key: ObjectKey, now: float) -> None:
        document = self._document(key)
        previous = self._payloads.get(key)
        if document is None:
            if previous is None:
                self.skipped += 1
                return
            del self._payloads[key]
            payload = ""  # an empty retained message deletes the retained topic
        else:
            payload = json.dumps(document, separators=(",", ":"), sort_keys=True)
            if payload == previous:
                self.skipped += 1
                return
            self._payloads[key] = payload
        self._last_sent[key] = now
        self.messages += 1
        self._publish(self.topics.of(key), payload, retain=True)

    def _document(self, key: ObjectKey) -> dict[str, Any] | None:  # noqa: PLR0911  # per kind
        controller = self.controller
        match key:
            case ("site",):
                return site_document(controller)
            case ("zone", zone_id):
                view = controller.zone_view(zone_id)
                return None if view is None else zone_document(view)
            case ("station", station_id):
                station = controller.site.stations.get(station_id)
                if station is None or station.registration is not Registration.ACCEPTED:
                    return None
                return station_document(controller, station)
            case ("connector", station_id, connector_id):
                station = controller.site.stations.get(station_id)
                if station is None or station.registration is not Registration.ACCEPTED:
                    return None
                connector = station.connectors.get(int(connector_id))
                if connector is None or connector.connector_id < 1:
                    return None
                return connector_document(controller, station, connector)
        return None

    # ------------------------------------------------------------------ diagnostics
    def diagnostics(self) -> dict[str, Any]:
        """Counters and what is retained (topics only)."""
        return {
            "prefix": self.topics.prefix,
            "min_interval": self.settings.min_interval,
            "running": self.running,
            "messages": self.messages,
            "unchanged_skipped": self.skipped,
            "pending": len(self._dirty),
            "retained_topics": len(self._payloads),
        }


def _connector_ids(station: Any) -> list[int]:
    return [c.connector_id for c in station.charge_points]
