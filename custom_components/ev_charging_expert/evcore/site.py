"""The site: the one owner of runtime state.

Protocol handlers (whatever their OCPP version) report what chargers say through the methods of
the "from chargers" section, in version-neutral terms; everything else reads `stations` and
sends commands, and reaches a connected charger through the charger port (`charger()`).
Changes are announced as typed events to subscribers.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
import logging
from typing import TYPE_CHECKING, Any, Protocol

from . import limits
from .admission import check_password, hash_password, identity_problem
from .auth.decision import AcceptAll, AuthDecision, Authorizer, AuthRequest
from .clock import parse_timestamp
from .config import StationConfig
from .errors import (
    ChargerInputError,
    ChargerNotConnectedError,
    InvalidIdentityError,
    RegistryLockedError,
    StoreCorruptError,
    UnknownStationError,
)
from .events import (
    CardPresented,
    PendingDropped,
    PendingListFull,
    SessionEnded,
    SessionEndUnknown,
    SessionStarted,
    SiteEvent,
    StationAccepted,
    StationAdded,
    StationAuthFailing,
    StationAuthRecovered,
    StationBooted,
    StationConfigured,
    StationPending,
    StationRemoved,
    StationUncontrollable,
    StationUpdated,
)
from .model import (
    BootInfo,
    ConnectorState,
    ConnectorStatus,
    NewChargerPolicy,
    Registration,
    StationState,
    Transaction,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .charger import Charger
    from .clock import Clock
    from .model import Measurement

_LOGGER = logging.getLogger(__name__)

STORAGE_VERSION = 1
# Errors of data that decode but do not fit the registry's shape (a hand edit, a bad disk).
_SHAPE_ERRORS = (AttributeError, KeyError, TypeError, ValueError)
__all__ = ["MemoryStore", "Site", "SiteSettings", "SiteStore", "check_password", "hash_password"]


type KnownStart = Callable[[str, int, str, float, datetime], int | None]
"""(station, connector, idTag, meter start, start time) -> transaction id of an open session."""


class SiteStore(Protocol):
    """Where the site keeps its station registry (HA's `Store` in production)."""

    async def load(self) -> dict[str, Any] | None:
        """Return the saved data, or None on first start.

        Raises StoreCorruptError when saved data exist but cannot be decoded; the store has
        then set them aside (`kept_as`), or left them in place (`kept_as` None).
        """

    async def set_aside(self) -> str | None:
        """Keep the saved data under a new name (they cannot be used); return that name.

        None when nothing is saved. Raises OSError when they cannot be moved.
        """

    def schedule_save(self, data: Callable[[], dict[str, Any]]) -> None:
        """Save `data()` soon; repeated calls may be coalesced."""


class MemoryStore:
    """A SiteStore kept in memory; for tests, benchmarks and simulations."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self._data = data
        self._provider: Callable[[], dict[str, Any]] | None = None
        self.saves = 0
        self.set_aside_data: list[dict[str, Any]] = []
        """What `set_aside` kept, oldest first."""

    @property
    def data(self) -> dict[str, Any] | None:
        """What was saved last (dumped when read, as a delayed save would)."""
        if self._provider is not None:
            self._data = self._provider()
            self._provider = None
        return self._data

    async def load(self) -> dict[str, Any] | None:
        """Return what was saved last."""
        return self.data

    async def set_aside(self) -> str | None:
        """Move what was saved to `set_aside_data`."""
        data = self.data
        if data is None:
            return None
        self.set_aside_data.append(data)
        self._data = None
        return f"set_aside_data[{len(self.set_aside_data) - 1}]"

    def schedule_save(self, data: Callable[[], dict[str, Any]]) -> None:
        """Remember what to save; dumped lazily (a thousand saves in a row cost one dump)."""
        self._provider = data
        self.saves += 1


@dataclass(slots=True)
class SiteSettings:
    """Site-wide settings."""

    # Pending by default: a stranger's made-up identities then cost a bounded list in memory
    # and nothing else (ACCEPT stores every identity that boots, and makes it an HA device).
    new_charger_policy: NewChargerPolicy = NewChargerPolicy.PENDING
    heartbeat_interval: int = 300
    max_pending: int = 100
    """Unknown identities held in memory (pending, or connected and not booted yet); the
    oldest is dropped for a new one."""


class Site:
    """Runtime state of the site and the event hub between chargers and the outside."""

    def __init__(
        self, clock: Clock, store: SiteStore, settings: SiteSettings | None = None
    ) -> None:
        self.clock = clock
        self.settings = settings or SiteSettings()
        self.stations: dict[str, StationState] = {}
        """The registry: stations the user accepted, removed or configured (saved)."""
        self.pending: OrderedDict[str, StationState] = OrderedDict()
        """Unknown identities seen lately, oldest first: in memory only, `max_pending` at most."""
        self.pending_dropped = 0
        """Unknown identities dropped from a full `pending` since the start."""
        self._pending_full = False
        self.registry_problem: StoreCorruptError | None = None
        """Why the saved registry could not be read: every charger is refused meanwhile."""
        self._may_save = True
        self._store = store
        self._chargers: dict[str, Charger] = {}
        self._listeners: list[Callable[[SiteEvent], None]] = []
        self._removal_hooks: list[Callable[[str], Awaitable[None]]] = []
        self._next_transaction_id = 1
        self._log_once = limits.LogOncePer(clock)
        self.authorizer: Authorizer = AcceptAll()
        """Decides who may charge (the Controller plugs the card registry in)."""
        self.vip_card: Callable[[str], bool] = lambda _id_tag: False
        """Whether an idTag is a VIP card (served first by the allocator)."""
        self.known_start: KnownStart | None = None
        """The session store's memory of open sessions, for StartTransaction replays."""

    # ------------------------------------------------------------------ persistence
    async def load(self) -> None:
        """Restore the station registry; an unreadable one locks the site (fails closed)."""
        try:
            data = await self._store.load()
        except StoreCorruptError as err:
            self._lock(err)
            return
        if not data:
            return
        try:
            self._restore(data)
        except _SHAPE_ERRORS as err:
            self.stations.clear()
            try:
                kept_as = await self._store.set_aside()
            except OSError as move_error:
                _LOGGER.error("The unreadable station registry stays in place: %s", move_error)  # noqa: TRY400  # no traceback for a file that cannot move
                kept_as = None
            self._lock(StoreCorruptError(f"unexpected content ({err!r})", kept_as))

    def _restore(self, data: dict[str, Any]) -> None:
        if (locked := data.get("locked")) is not None:
            self.registry_problem = StoreCorruptError(str(locked["problem"]), locked.get("kept_as"))
            _LOGGER.error(
                "The station registry is still locked (%s): every charger is refused until "
                "it is restored from a backup or an empty registry is started",
                self.registry_problem,
            )
            return
        self._next_transaction_id = int(data.get("next_transaction_id", 1))
        stations: dict[str, Any] = data.get("stations", {})
        for station_id, raw in stations.items():
            station = _station_from_dict(station_id, raw)
            if station.registration is Registration.PENDING and _untouched(station):
                # Saved by an earlier version: unknown identities now live in memory only.
                self.pending[station_id] = station
                continue
            self.stations[station_id] = station
        while len(self.pending) > self.settings.max_pending:
            self.pending.popitem(last=False)
        if len(self.stations) < len(stations):
            self._save()

    def _lock(self, problem: StoreCorruptError) -> None:
        """Refuse every charger until the user restores the registry or starts an empty one."""
        self.registry_problem = problem
        self.stations.clear()
        self.pending.clear()
        kept = f"; the unreadable data are kept as {problem.kept_as}" if problem.kept_as else ""
        _LOGGER.error(
            "The station registry cannot be read (%s)%s. Every charger is refused (its "
            "password and whether it was removed are unknown) until the registry is restored "
            "from a backup or an empty registry is started",
            problem,
            kept,
        )
        if problem.kept_as is None:
            # The unreadable data are still where a save would go: never write over them.
            self._may_save = False
        else:
            # Saved, so that a restart stays locked although the unreadable data moved away.
            self._save()

    async def start_empty(self) -> None:
        """The user's choice after an unreadable registry: start with no station at all.

        The passwords and removals of the lost registry are forgotten: every charger is a new
        charger again (see the new-charger policy).
        """
        problem = self.registry_problem
        if problem is None:
            return
        if problem.kept_as is None:
            kept_as = await self._store.set_aside()
            if kept_as is not None:
                _LOGGER.warning("The unreadable station registry is kept as %s", kept_as)
        self.registry_problem = None
        self._may_save = True
        self.stations.clear()
        # Transaction ids restart high enough not to reuse those of the lost registry.
        self._next_transaction_id = max(
            self._next_transaction_id, int((self.clock.now() - _EPOCH).total_seconds())
        )
        self._save()
        _LOGGER.warning("Started an empty station registry, as the user chose")

    def _save(self) -> None:
        if self._may_save:
            self._store.schedule_save(self._dump)

    def _dump(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": STORAGE_VERSION,
            "next_transaction_id": self._next_transaction_id,
            "stations": {sid: _station_to_dict(s) for sid, s in self.stations.items()},
        }
        if (problem := self.registry_problem) is not None:
            data["locked"] = {"problem": problem.problem, "kept_as": problem.kept_as}
        return data

    # ------------------------------------------------------------------ events
    def subscribe(self, listener: Callable[[SiteEvent], None]) -> Callable[[], None]:
        """Call `listener` with every event; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def before_removal(self, hook: Callable[[str], Awaitable[None]]) -> Callable[[], None]:
        """Await `hook(station_id)` before a station is removed, while it is still connected."""
        self._removal_hooks.append(hook)
        return lambda: self._removal_hooks.remove(hook)

    def _emit(self, event: SiteEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                _LOGGER.exception("Site event listener failed on %s", event)

    # ------------------------------------------------------------------ settings
    @property
    def heartbeat_interval(self) -> int:
        """Heartbeat interval given to chargers at boot (s)."""
        return self.settings.heartbeat_interval

    # ------------------------------------------------------------------ registry
    def station(self, station_id: str) -> StationState:
        """Return a known station or raise UnknownStationError."""
        try:
            return self.stations[station_id]
        except KeyError:
            raise UnknownStationError(station_id) from None

    def is_accepted(self, station_id: str) -> bool:
        """Whether the station is accepted (may charge and be operated)."""
        station = self.stations.get(station_id)
        return station is not None and station.registration is Registration.ACCEPTED

    def accept_station(self, station_id: str) -> None:
        """Let a pending or removed charger in (or one that never connected yet)."""
        if self.registry_problem is not None:
            raise RegistryLockedError
        if (problem := identity_problem(station_id)) is not None:
            raise InvalidIdentityError(station_id, problem)
        station = self.stations.get(station_id)
        if station is None:
            station = self.pending.pop(station_id, None) or StationState(station_id)
            self.stations[station_id] = station
            self._pending_full &= len(self.pending) >= self.settings.max_pending
            self._emit(StationAdded(station_id))
        station.registration = Registration.ACCEPTED
        self._save()
        self._emit(StationAccepted(station_id))
        self._emit(StationUpdated(station_id))

    async def remove_station(self, station_id: str) -> None:
        """Forget a station's state and refuse it from now on (a pending one too)."""
        if (pending := self.pending.pop(station_id, None)) is not None:
            self.stations[station_id] = pending
            self._pending_full &= len(self.pending) >= self.settings.max_pending
            self._emit(StationAdded(station_id))
        station = self.station(station_id)
        for hook in list(self._removal_hooks):
            try:
                await hook(station_id)
            except Exception:
                _LOGGER.exception("Removal hook failed for %s", station_id)
        station.registration = Registration.REMOVED
        station.boot = None
        station.connectors.clear()
        station.configuration.clear()
        self._save()
        charger = self._chargers.get(station_id)
        if charger is not None:
            await charger.close(code=1008, reason="Charger removed from the central system")
        self._emit(StationRemoved(station_id))

    def configure_station(self, station_id: str, config: StationConfig) -> None:
        """Replace a station's load-management description (zone, VIP, connectors)."""
        station = self.station(station_id)
        station.config = config
        self._save()
        self._emit(StationConfigured(station_id))
        self._emit(StationUpdated(station_id))

    def notify_uncontrollable(self, station_id: str, reason: str) -> None:
        """Load management found that a charger cannot be held to a setpoint."""
        self._emit(StationUncontrollable(station_id, reason))

    def set_password(self, station_id: str, password: str | None) -> None:
        """Require HTTP Basic auth with this password (None: no password)."""
        station = self.station(station_id)
        station.password_hash = hash_password(password) if password else None
        self._save()

    # ------------------------------------------------------------------ connections
    def admission_refusal(self, station_id: str) -> str | None:
        """Why a connection from this charger is refused, or None to let it in."""
        if self.registry_problem is not None:
            return "the central system cannot read its charger registry"
        station = self.stations.get(station_id)
        if station is not None and station.registration is Registration.REMOVED:
            return "charger removed from the central system"
        return None

    def password_required(self, station_id: str) -> bool:
        """Whether the charger must present a password."""
        return self.password_hash(station_id) is not None

    def password_hash(self, station_id: str) -> str | None:
        """The stored hash of a charger's password (check it off the event loop)."""
        station = self.stations.get(station_id)
        return None if station is None else station.password_hash

    def authentication_failing(self, station_id: str) -> None:
        """A known charger's wrong passwords started a back-off (its password changed?)."""
        self._emit(StationAuthFailing(station_id))

    def authentication_recovered(self, station_id: str) -> None:
        """A charger whose passwords were failing presented the right one."""
        self._emit(StationAuthRecovered(station_id))

    def attach(self, charger: Charger) -> Charger | None:
        """Make `charger` the station's connection; returns the one it replaces, if any."""
        station_id = charger.station_id
        old = self._chargers.get(station_id)
        self._chargers[station_id] = charger
        station = self.stations.get(station_id)
        known = station is not None
        if station is None:
            station = self._pending_station(station_id)
        now = self.clock.now()
        station.connected = True
        station.connected_since = now
        station.last_seen = now
        if known:
            self._emit(StationUpdated(station_id))
        return old

    def detach(self, charger: Charger) -> None:
        """Forget a closed connection, unless a newer one replaced it already."""
        station_id = charger.station_id
        if self._chargers.get(station_id) is not charger:
            return
        del self._chargers[station_id]
        if (pending := self.pending.get(station_id)) is not None:
            pending.connected = False
        station = self.stations.get(station_id)
        if station is not None:
            station.connected = False
            self._emit(StationUpdated(station_id))

    def charger(self, station_id: str) -> Charger:
        """The live connection of a station, to send it requests."""
        self.station(station_id)
        charger = self._chargers.get(station_id)
        if charger is None:
            raise ChargerNotConnectedError(station_id)
        return charger

    @property
    def chargers(self) -> dict[str, Charger]:
        """Live connections by station id (read-only use)."""
        return self._chargers

    def _pending_station(self, station_id: str) -> StationState:
        """An unknown identity, held in memory (the newest last); the oldest goes when full."""
        station = self.pending.get(station_id)
        if station is not None:
            self.pending.move_to_end(station_id)
            return station
        station = self.pending[station_id] = StationState(
            station_id, registration=Registration.PENDING
        )
        if len(self.pending) > self.settings.max_pending:
            dropped, _ = self.pending.popitem(last=False)
            self.pending_dropped += 1
            self._emit(PendingDropped(dropped))
            if not self._pending_full:
                self._pending_full = True
                _LOGGER.warning(
                    "%d unknown chargers wait already: the oldest is forgotten for each new one "
                    "(many new chargers, or someone trying made-up identities?)",
                    self.settings.max_pending,
                )
                self._emit(PendingListFull(self.settings.max_pending))
        if self.settings.new_charger_policy is NewChargerPolicy.PENDING:
            self._emit(StationPending(station_id))
        return station

    def _admit_new(self, station_id: str) -> StationState:
        """The policy lets new chargers in: an unknown identity that booted joins the registry."""
        station = self.pending.pop(station_id, None) or StationState(station_id)
        station.registration = Registration.ACCEPTED
        self.stations[station_id] = station
        self._save()
        self._emit(StationAdded(station_id))
        return station

    # ------------------------------------------------------------------ from chargers
    def frame_received(self, station_id: str) -> None:
        """Any frame counts as a sign of life."""
        station = self.stations.get(station_id) or self.pending.get(station_id)
        if station is not None:
            station.last_seen = self.clock.now()

    def station_booted(self, station_id: str, boot: BootInfo) -> Registration:
        """The charger booted: say whether it is let in.

        An unknown one joins the registry only when the policy admits new chargers.
        """
        station = self.stations.get(station_id)
        if station is None:
            if self.settings.new_charger_policy is not NewChargerPolicy.ACCEPT:
                pending = self._pending_station(station_id)
                pending.boot = boot
                pending.last_boot = self.clock.now()
                return Registration.PENDING
            station = self._admit_new(station_id)
        if station.registration is Registration.REMOVED:
            return station.registration
        station.boot = boot
        station.last_boot = self.clock.now()
        self._save()
        self._emit(StationBooted(station_id))
        self._emit(StationUpdated(station_id))
        return station.registration

    def input_rejected(self, station_id: str, kind: str, detail: str) -> None:
        """A value or frame from a charger was refused: count it, log it once in a while.

        `kind` names what was refused (a measurand, "connectorId", "frame", ...); `detail`
        says why, with every value from the charger already quoted (`!r`).
        """
        station = self.stations.get(station_id)
        if station is not None:
            station.rejected[kind] = station.rejected.get(kind, 0) + 1
        self._log_once.log(
            _LOGGER,
            station_id,
            kind,
            "%r: refused %s: %s (logged once per %g s; counted in diagnostics)",
            station_id,
            kind,
            detail,
            limits.LOG_INTERVAL_S,
        )

    def connector_limit(self, station_id: str) -> int:
        """The highest connector id the station may use (its NumberOfConnectors, capped)."""
        station = self.stations.get(station_id)
        reported = station.configuration.get("NumberOfConnectors") if station else None
        try:
            count = int(reported or "")
        except ValueError:
            return limits.MAX_CONNECTORS
        return min(count, limits.MAX_CONNECTORS) if count > 0 else limits.MAX_CONNECTORS

    def _check_connector(self, station_id: str, connector_id: int, *, lowest: int = 0) -> None:
        highest = self.connector_limit(station_id)
        if lowest <= connector_id <= highest:
            return
        message = f"{connector_id!r} is not in {lowest}..{highest}"
        self.input_rejected(station_id, "connectorId", message)
        raise ChargerInputError(station_id, "connectorId", message)

    def configuration_read(self, station_id: str, keys: list[dict[str, Any]]) -> None:
        """Configuration keys read from (or written to) the charger."""
        station = self.station(station_id)
        for entry in keys:
            if "key" not in entry or entry.get("value") is None:
                continue
            key = str(entry["key"])
            if (
                key not in station.configuration
                and len(station.configuration) >= limits.MAX_CONFIGURATION_KEYS
            ):
                self.input_rejected(station_id, "configuration", f"key {key!r}: too many keys")
                continue
            station.configuration[key] = str(entry["value"])
        self._drop_connectors_beyond(station)
        self._save()
        self._emit(StationUpdated(station_id))

    def _drop_connectors_beyond(self, station: StationState) -> None:
        """Forget connectors a charger used before it reported fewer (NumberOfConnectors)."""
        highest = self.connector_limit(station.station_id)
        for connector_id in [cid for cid in station.connectors if cid > highest]:
            connector = station.connectors[connector_id]
            if connector.transaction is not None:
                now = self.clock.now()
                self._close_session(
                    station,
                    connector,
                    meter_stop_wh=None,
                    stopped_at=now,
                    reason=REASON_NO_SUCH_CONNECTOR,
                )
            del station.connectors[connector_id]
            self.input_rejected(
                station.station_id,
                "connectorId",
                f"connector {connector_id} forgotten: NumberOfConnectors is {highest}",
            )

    def heartbeat(self, station_id: str) -> None:
        """The charger says it is alive."""
        station = self.stations.get(station_id)
        if station is not None:
            station.last_heartbeat = self.clock.now()
            self._emit(StationUpdated(station_id))

    def connector_status(
        self,
        station_id: str,
        connector_id: int,
        *,
        status: ConnectorStatus,
        error_code: str,
        info: str | None,
        vendor_id: str | None,
        vendor_error_code: str | None,
        timestamp: datetime,
    ) -> None:
        """A connector's (0: the station's) status; ChargerInputError for a connector it lacks."""
        station = self.station(station_id)
        self._check_connector(station_id, connector_id)
        is_new = connector_id not in station.connectors
        connector = station.connector(connector_id)
        connector.status = status
        connector.error_code = error_code
        connector.info = info
        connector.vendor_id = vendor_id
        connector.vendor_error_code = vendor_error_code
        connector.status_at = timestamp
        if is_new:
            self._save()
        self._emit(StationUpdated(station_id, connector_id))

    def measurements(
        self,
        station_id: str,
        connector_id: int,
        samples: list[Measurement],
        transaction_id: int | None,
    ) -> None:
        """Sampled values: keep the latest valid value of every measurand and phase.

        A value outside its measurand's range (`limits.MEASURAND_RANGES`) is dropped, and so
        is an energy register that goes down during a session; ChargerInputError for a
        connector the station lacks.
        """
        del transaction_id  # the connector's open transaction already says which one
        station = self.station(station_id)
        self._check_connector(station_id, connector_id)
        connector = station.connector(connector_id)
        transaction = connector.transaction
        register_at: datetime | None = None
        for sample in self._usable(station_id, samples):
            key = (sample.measurand, sample.phase)
            if sample.measurand == ENERGY_REGISTER and transaction is not None:
                previous = connector.measurements.get(key)
                if (
                    transaction.register_wh is not None
                    and previous is not None
                    and sample.value < previous.value
                ):
                    self.input_rejected(
                        station_id,
                        sample.measurand,
                        f"{sample.value!r} Wh is below {previous.value!r} Wh during a session",
                    )
                    continue
                register_at = max(register_at or sample.timestamp, sample.timestamp)
            connector.measurements[key] = sample
        if transaction is not None and register_at is not None:
            self._session_register(station, connector, transaction, register_at)
        self._emit(StationUpdated(station_id, connector_id))

    def _usable(self, station_id: str, samples: list[Measurement]) -> list[Measurement]:
        usable = []
        for sample in samples:
            problem = limits.measurement_problem(sample)
            if problem is None:
                usable.append(sample)
            else:
                self.input_rejected(station_id, sample.measurand, problem)
        return usable

    def _session_register(
        self,
        station: StationState,
        connector: ConnectorState,
        transaction: Transaction,
        sampled_at: datetime,
    ) -> None:
        """A register sample during a session: check the meter start on the first one."""
        register = connector.energy_wh
        if register is None:
            return
        if transaction.register_wh is None:
            delta = register - transaction.meter_start_wh
            if not self._plausible_energy(station, transaction, delta, sampled_at):
                # Chargers that send meterStart = 0 (or a per-session count) while their
                # register samples are lifetime totals: the first sample is the real start.
                self.input_rejected(
                    station.station_id,
                    "meterStart",
                    f"{transaction.meter_start_wh!r} Wh does not match the register "
                    f"({register!r} Wh): session {transaction.transaction_id} starts there",
                )
                transaction.charger_meter_start_wh = transaction.meter_start_wh
                transaction.meter_start_wh = register
                self._save()
            transaction.register_wh = register
            return
        transaction.register_wh = max(transaction.register_wh, register)

    def _plausible_energy(
        self, station: StationState, transaction: Transaction, delta_wh: float, at: datetime
    ) -> bool:
        """Whether a register can have moved by `delta_wh` from the start to `at`.

        `at` is on the charger's clock; the time the site itself saw pass counts as well,
        since a charger's clock may be wrong (a session restored from an older store, with
        no such time, gets the benefit of the doubt).
        """
        slack = limits.ENERGY_SLACK_WH
        if delta_wh < -slack:
            return False
        if transaction.received_at is None:
            return True
        seconds = max(
            (at - transaction.started_at).total_seconds(),
            (self.clock.now() - transaction.received_at).total_seconds(),
            0.0,
        )
        power = limits.MAX_POWER_W if station.config.dc else limits.MAX_AC_POWER_W
        return delta_wh <= slack + seconds / 3600.0 * power

    def authorize(self, station_id: str, id_tag: str) -> AuthDecision:
        """Whether a card may charge here: the authorizer decides; announced as CardPresented."""
        return self._decide(station_id, None, id_tag)

    def _decide(self, station_id: str, connector_id: int | None, id_tag: str) -> AuthDecision:
        # A session start opens whatever the answer: only an Authorize asks for ConcurrentTx.
        start = connector_id is not None
        busy = not start and self._in_session(id_tag.strip().casefold())
        request = AuthRequest(station_id, connector_id, id_tag, busy, start=start)
        decision = self.authorizer.decide(request)
        self._emit(
            CardPresented(
                station_id,
                connector_id,
                id_tag,
                accepted=decision.accepted,
                decision=decision.status.value,
                reason=decision.reason,
            )
        )
        return decision

    def _in_session(self, key: str) -> bool:
        """Whether an idTag (compared as cards are) runs a session anywhere on the site."""
        return any(
            c.transaction is not None and c.transaction.id_tag.strip().casefold() == key
            for station in self.stations.values()
            for c in station.connectors.values()
        )

    def start_session(
        self,
        station_id: str,
        connector_id: int,
        *,
        id_tag: str,
        meter_start_wh: float,
        started_at: datetime,
        reservation_id: int | None,
    ) -> tuple[Transaction, AuthDecision]:
        """A session started: open it with a site-unique id; the authorizer decides on its card.

        ChargerInputError for a connector the station lacks or an absurd meter start.

        A second start on a busy connector is either the same start sent again or a new
        session. OCPP 1.6 (4.8, 4.10) has chargers resend a transaction message whose answer
        they did not get: the same connector, card, meter start and time is that resend, and
        gets the session it already has. Anything else means the charger ended the previous
        session and we missed the StopTransaction (it gave up retrying, or a queue was lost);
        a charger has one session per connector and it is the authority on what runs there,
        so refusing the new one would leave a session we know is over open and would
        de-authorise the EV that is really plugged in. The previous session is closed (reason
        `SupersededBySession`, the new meter start as its meter stop) and reported as ended.
        """
        station = self.station(station_id)
        self._check_connector(station_id, connector_id, lowest=1)
        if not limits.METER_START.holds(meter_start_wh):
            message = f"{meter_start_wh!r} Wh is not a meter start"
            self.input_rejected(station_id, "meterStart", message)
            raise ChargerInputError(station_id, "meterStart", message)
        connector = station.connector(connector_id)
        previous = connector.transaction
        if previous is not None:
            resent = (previous.id_tag, previous.reported_meter_start_wh, previous.started_at)
            if resent == (id_tag, meter_start_wh, started_at):
                return previous, self.authorizer.decide(
                    AuthRequest(station_id, connector_id, id_tag, busy_elsewhere=False, start=True)
                )
            self._log_once.log(
                _LOGGER,
                station_id,
                REASON_SUPERSEDED,
                "%r: session %s on connector %s replaced by a new one: its end was never reported",
                station_id,
                previous.transaction_id,
                connector_id,
            )
            self._close_session(
                station,
                connector,
                meter_stop_wh=meter_start_wh,
                stopped_at=started_at,
                reason=REASON_SUPERSEDED,
            )
        replayed = self._replayed_start(
            station_id, connector_id, id_tag, meter_start_wh, started_at
        )
        transaction = Transaction(
            transaction_id=self._next_transaction_id if replayed is None else replayed,
            connector_id=connector_id,
            id_tag=id_tag,
            meter_start_wh=meter_start_wh,
            started_at=started_at,
            reservation_id=reservation_id,
            received_at=self.clock.now(),
        )
        if replayed is None:
            self._next_transaction_id += 1
        connector.transaction = transaction
        self._save()
        decision = self._decide(station_id, connector_id, id_tag)
        self._emit(SessionStarted(station_id, transaction))
        self._emit(StationUpdated(station_id, connector_id))
        return transaction, decision

    def stop_session(
        self,
        station_id: str,
        transaction_id: int,
        *,
        meter_stop_wh: float,
        stopped_at: datetime,
        reason: str,
        id_tag: str | None,
        transaction_data: list[Measurement],
    ) -> Transaction | None:
        """A session ended: close it (an unknown id is acknowledged and logged).

        An absurd meter stop is ignored (the session keeps the energy its samples showed).
        """
        station = self.station(station_id)
        connector = next(
            (
                c
                for c in station.connectors.values()
                if c.transaction and c.transaction.transaction_id == transaction_id
            ),
            None,
        )
        if connector is None or connector.transaction is None:
            if any(
                c.last_transaction and c.last_transaction.transaction_id == transaction_id
                for c in station.connectors.values()
            ):
                # The late end of a session a new one replaced (see start_session).
                _LOGGER.debug("%r: end of closed session %r", station_id, transaction_id)
            else:
                self.input_rejected(
                    station_id, "transactionId", f"end of unknown session {transaction_id!r}"
                )
                self._emit(
                    SessionEndUnknown(
                        station_id, transaction_id, meter_stop_wh, stopped_at, reason, id_tag
                    )
                )
            return None
        stop: float | None = meter_stop_wh
        if not limits.METER_START.holds(meter_stop_wh):
            self.input_rejected(station_id, "meterStop", f"{meter_stop_wh!r} Wh is not a meter")
            stop = None
        return self._close_session(
            station,
            connector,
            meter_stop_wh=stop,
            stopped_at=stopped_at,
            reason=reason,
            id_tag=id_tag,
            transaction_data=self._usable(station_id, transaction_data),
        )

    def _close_session(
        self,
        station: StationState,
        connector: ConnectorState,
        *,
        meter_stop_wh: float | None,
        stopped_at: datetime,
        reason: str,
        id_tag: str | None = None,
        transaction_data: list[Measurement] | None = None,
    ) -> Transaction:
        transaction = connector.transaction
        assert transaction is not None  # noqa: S101  # callers pass a connector in a session
        transaction.meter_stop_wh = meter_stop_wh
        transaction.stopped_at = stopped_at
        transaction.stop_reason = reason
        transaction.stop_id_tag = id_tag
        transaction.transaction_data = transaction_data or []
        transaction.final_energy_wh = self._final_energy(station, transaction)
        connector.transaction = None
        connector.last_transaction = transaction
        _zero_draw(connector, stopped_at)
        self._save()
        self._emit(SessionEnded(station.station_id, transaction))
        self._emit(StationUpdated(station.station_id, transaction.connector_id))
        return transaction

    def _final_energy(self, station: StationState, transaction: Transaction) -> float:
        """The session's energy, from its meter stop when that fits.

        Never less than its register samples showed: a session's energy never goes down.
        """
        so_far = transaction.energy_wh() or 0.0
        stop = transaction.meter_stop_wh
        if stop is None or transaction.stopped_at is None:
            return so_far
        if transaction.charger_meter_start_wh is None:
            # Nothing says the charger's meters disagree: its meter stop is the end.
            delta = stop - transaction.meter_start_wh
            return max(so_far, delta) if delta >= -limits.ENERGY_SLACK_WH else so_far
        # The meter start was replaced by the first sample: the meter stop is in the
        # register's scale, or in the scale of the meter start the charger sent.
        for start in (transaction.meter_start_wh, transaction.charger_meter_start_wh):
            if self._plausible_energy(station, transaction, stop - start, transaction.stopped_at):
                return max(so_far, stop - start)
        return so_far

    # ------------------------------------------------------------------ session store
    def _replayed_start(
        self,
        station_id: str,
        connector_id: int,
        id_tag: str,
        meter_start_wh: float,
        started_at: datetime,
    ) -> int | None:
        """The id of the session the store has open for this very start, else None.

        That is a replay after a restart that lost the site's own record of the session.
        """
        if self.known_start is None:
            return None
        return self.known_start(station_id, connector_id, id_tag, meter_start_wh, started_at)

    def reserve_transaction_ids(self, next_id: int) -> None:
        """Never hand out an id below `next_id` (the session store has used those)."""
        if next_id > self._next_transaction_id:
            self._next_transaction_id = next_id
            self._save()

    def force_stop_session(self, station_id: str, connector_id: int) -> Transaction:
        """Close the session of a station that is gone, with the energy last known.

        The connector then wants no current any more; an offline charger still counts at what
        it may draw until its lease expires (load management knows that). ChargerInputError
        when the station is connected (stop it remotely instead) or has no session there.
        """
        station = self.station(station_id)
        connector = station.connectors.get(connector_id)
        if connector is None or connector.transaction is None:
            raise ChargerInputError(station_id, "connectorId", f"no session on {connector_id}")
        if station.connected:
            raise ChargerInputError(
                station_id, "connected", "the station is connected: stop its session remotely"
            )
        transaction = connector.transaction
        stop = transaction.register_wh
        return self._close_session(
            station,
            connector,
            meter_stop_wh=stop,
            stopped_at=self.clock.now(),
            reason=REASON_FORCED,
        )

    def vendor_data(
        self, station_id: str, vendor_id: str, message_id: str | None, data: str | None
    ) -> None:
        """Vendor data from a charger: logged; no vendor extension is implemented."""
        _LOGGER.debug("%r: DataTransfer %r/%r: %.200r", station_id, vendor_id, message_id, data)

    def firmware_status(self, station_id: str, status: str) -> None:
        """Progress of a firmware update."""
        self.station(station_id).firmware_status = status
        self._save()
        self._emit(StationUpdated(station_id))

    def diagnostics_status(self, station_id: str, status: str) -> None:
        """Progress of a diagnostics upload."""
        self.station(station_id).diagnostics_status = status
        self._save()
        self._emit(StationUpdated(station_id))


def _zero_draw(connector: ConnectorState, at: datetime) -> None:
    """A session ended: its EV draws nothing, even if the charger sends no last sample."""
    for key, sample in list(connector.measurements.items()):
        if sample.measurand in _DRAW_MEASURANDS:
            connector.measurements[key] = replace(sample, value=0.0, timestamp=at)


_DRAW_MEASURANDS = frozenset({"Current.Import", "Power.Active.Import"})
_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def _untouched(station: StationState) -> bool:
    """Nothing the user set: no password, no zone or other installer setting."""
    return station.password_hash is None and station.config == StationConfig()


ENERGY_REGISTER = "Energy.Active.Import.Register"

REASON_SUPERSEDED = "SupersededBySession"
"""Stop reason of a session the charger replaced by a new one without reporting its end."""
REASON_FORCED = "ForcedByUser"
"""Stop reason of a session the user closed because its station was gone (force stop)."""
REASON_NO_SUCH_CONNECTOR = "ConnectorDoesNotExist"
"""Stop reason of a session on a connector beyond the charger's NumberOfConnectors."""

# Fields that survive a restart; live values (status, meters) come back from the charger.
_PERSISTED = (
    "registration",
    "firmware_status",
    "diagnostics_status",
    "configuration",
    "password_hash",
    "last_heartbeat",
    "last_boot",
)


def _station_to_dict(station: StationState) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(station, name) for name in _PERSISTED}
    for name in ("last_heartbeat", "last_boot"):
        if data[name] is not None:
            data[name] = data[name].isoformat()
    data["boot"] = None
    if station.boot is not None:
        data["boot"] = {f.name: getattr(station.boot, f.name) for f in fields(BootInfo)}
    data["connectors"] = {
        str(cid): _transaction_to_dict(c.transaction) for cid, c in station.connectors.items()
    }
    data["config"] = station.config.to_dict()
    return data


def _transaction_to_dict(transaction: Transaction | None) -> dict[str, Any] | None:
    if transaction is None:
        return None
    return {
        "transaction_id": transaction.transaction_id,
        "connector_id": transaction.connector_id,
        "id_tag": transaction.id_tag,
        "meter_start_wh": transaction.meter_start_wh,
        "started_at": transaction.started_at.isoformat(),
        "reservation_id": transaction.reservation_id,
        "charger_meter_start_wh": transaction.charger_meter_start_wh,
        "register_wh": transaction.register_wh,
        "received_at": transaction.received_at.isoformat() if transaction.received_at else None,
    }


def _station_from_dict(station_id: str, raw: dict[str, Any]) -> StationState:
    station = StationState(station_id)
    station.registration = Registration(raw.get("registration", Registration.ACCEPTED))
    station.firmware_status = raw.get("firmware_status")
    station.diagnostics_status = raw.get("diagnostics_status")
    station.configuration = dict(raw.get("configuration") or {})
    station.password_hash = raw.get("password_hash")
    station.config = StationConfig.from_dict(raw.get("config"))
    for name in ("last_heartbeat", "last_boot"):
        if raw.get(name):
            setattr(station, name, parse_timestamp(raw[name], default=None))  # type: ignore[arg-type]
    if raw.get("boot"):
        station.boot = BootInfo(**raw["boot"])
    for cid, tx in (raw.get("connectors") or {}).items():
        connector = station.connector(int(cid))
        if tx:
            connector.transaction = Transaction(
                transaction_id=int(tx["transaction_id"]),
                connector_id=int(tx["connector_id"]),
                id_tag=str(tx["id_tag"]),
                meter_start_wh=float(tx["meter_start_wh"]),
                started_at=parse_timestamp(tx["started_at"], default=None),  # type: ignore[arg-type]
                reservation_id=tx.get("reservation_id"),
                charger_meter_start_wh=tx.get("charger_meter_start_wh"),
                register_wh=tx.get("register_wh"),
                received_at=parse_timestamp(tx.get("received_at"), default=None),  # type: ignore[arg-type]
            )
    return station
