"""Bringing one charger in line: its authorization keys, then its local authorization list.

One job per station at a time (`StationSync.kick` coalesces): read the keys, change those that
differ one at a time (each confirmed before the next), then — for a station in known-cards
mode with the LocalAuthListManagement profile — compare the charger's list version with ours
and send the list: in full (first sync, after a reboot, on drift) or as a differential, in
chunks of SendLocalListMaxLength, each chunk a new version. A card that lost its rights also
clears the charger's authorization cache.

What a charger cannot do is recorded and not asked again until it reboots or the wanted value
changes: an unknown or read-only key, a refused value, no local-list support.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
import logging
from typing import TYPE_CHECKING, Any

from ..charger import LocalListEntry
from ..errors import ChargerError, ChargerRejectedError
from .modes import AUTH_KEYS, AuthMode, desired_keys

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from ..charger import Charger
    from .modes import Resolved

_LOGGER = logging.getLogger(__name__)

LOCAL_LIST_PROFILE = "localauthlistmanagement"
DEFAULT_CHUNK = 20
"""Entries per SendLocalList when the charger does not say (SendLocalListMaxLength)."""
_EXTRA_KEYS = ("SupportedFeatureProfiles", "SendLocalListMaxLength", "LocalAuthListMaxLength")


class KeyStatus(StrEnum):
    """What became of a configuration key we want set."""

    PENDING = "pending"
    APPLIED = "applied"
    REBOOT_REQUIRED = "reboot_required"
    REJECTED = "rejected"
    NOT_SUPPORTED = "not_supported"
    READ_ONLY = "read_only"
    FAILED = "failed"


class ListStatus(StrEnum):
    """The state of a charger's local authorization list."""

    NOT_USED = "not_used"
    """The station is not in known-cards mode."""
    PENDING = "pending"
    IN_SYNC = "in_sync"
    TRUNCATED = "truncated"
    """In sync with the first LocalAuthListMaxLength cards: the charger holds no more."""
    NOT_SUPPORTED = "not_supported"
    FAILED = "failed"


@dataclass(slots=True)
class KeyState:
    """A key we want, and what the charger did with it."""

    value: str
    status: KeyStatus = KeyStatus.PENDING
    detail: str | None = None


@dataclass(slots=True)
class StationAuthState:
    """Per station: keys, local list, what is left to do."""

    keys: dict[str, KeyState] = field(default_factory=dict)
    list_status: ListStatus = ListStatus.PENDING
    list_version: int | None = None
    """The version the charger confirmed last (None: unknown, send in full)."""
    list_entries: dict[str, LocalListEntry] | None = None
    """What the charger holds at `list_version`, by card key."""
    list_error: str | None = None
    last_sync: datetime | None = None
    full_syncs: int = 0
    differential_syncs: int = 0
    clear_cache: bool = False
    supports_local_list: bool | None = None
    dirty: bool = False
    running: bool = False
    runner: object | None = None
    """The connection the running job is tied to (a job of a closed one never ends: it may
    be cancelled before it starts)."""

    def to_dict(self) -> dict[str, Any]:
        """For the station's entities and diagnostics."""
        return {
            "keys": {
                k: {"value": s.value, "status": s.status.value, "detail": s.detail}
                for k, s in self.keys.items()
            },
            "local_list": self.list_status.value,
            "local_list_version": self.list_version,
            "local_list_size": None if self.list_entries is None else len(self.list_entries),
            "local_list_error": self.list_error,
            "last_sync": None if self.last_sync is None else self.last_sync.isoformat(),
            "full_syncs": self.full_syncs,
            "differential_syncs": self.differential_syncs,
        }


class StationSync:
    """Runs the per-station jobs."""

    def __init__(
        self,
        *,
        charger: Callable[[str], Charger | None],
        resolve: Callable[[str], Resolved],
        entries: Callable[[str], dict[str, LocalListEntry]],
        now: Callable[[], datetime],
        on_change: Callable[[str], None],
        ready: Callable[[str], bool],
    ) -> None:
        """`ready(station_id)`: the charger's boot configuration was read (see `kick`)."""
        self._ready = ready
        self._charger = charger
        self._resolve = resolve
        self._entries = entries
        self._now = now
        self._on_change = on_change
        self.states: dict[str, StationAuthState] = {}

    def state(self, station_id: str) -> StationAuthState:
        """The station's state (created empty)."""
        return self.states.setdefault(station_id, StationAuthState())

    def booted(self, station_id: str) -> None:
        """A reboot may have reset keys and list: check everything again."""
        state = self.state(station_id)
        for key in state.keys.values():
            key.status = KeyStatus.PENDING
        state.list_version = None
        state.list_entries = None
        state.supports_local_list = None
        self.kick(station_id)

    def resume(self, station_id: str) -> None:
        """Kick a connected station never synced since start, or with work left."""
        state = self.states.get(station_id)
        if (state is None or state.dirty) and self._charger(station_id) is not None:
            self.kick(station_id)  # (`kick` waits for the boot configuration)

    def forget(self, station_id: str) -> None:
        """The station is gone."""
        self.states.pop(station_id, None)

    def kick(self, station_id: str) -> None:
        """Bring the station in line soon (one job at a time; repeated kicks coalesce)."""
        state = self.state(station_id)
        state.dirty = True
        charger = self._charger(station_id)
        if charger is None or not self._ready(station_id):
            # Done when it is heard from again (`resume`). Before its boot configuration is
            # read, a key we change would be the station's only known key, and load
            # management would take it for a charger without Smart Charging.
            return
        if state.running and state.runner is charger:
            return
        state.running, state.runner = True, charger
        charger.spawn(self._run(station_id, charger, state))

    async def _run(self, station_id: str, charger: Charger, state: StationAuthState) -> None:
        try:
            while state.dirty:
                state.dirty = False
                await self._sync(station_id, charger, state)
                self._on_change(station_id)
        except ChargerError as err:
            # Tried again when the charger is heard from next (heartbeat, reconnection).
            state.dirty = True
            _LOGGER.info("%r: authorization settings not applied yet: %s", station_id, err)
        finally:
            if state.runner is charger:
                state.running, state.runner = False, None

    async def _sync(self, station_id: str, charger: Charger, state: StationAuthState) -> None:
        resolved = self._resolve(station_id)
        result = await charger.get_configuration([*AUTH_KEYS, *_EXTRA_KEYS])
        current = {str(k.get("key")): k.get("value") for k in result.keys}
        readonly = {str(k.get("key")) for k in result.keys if k.get("readonly")}
        unknown = set(result.unknown_keys)
        profiles = {
            p.strip().casefold()
            for p in str(current.get("SupportedFeatureProfiles") or "").split(",")
        }
        state.supports_local_list = LOCAL_LIST_PROFILE in profiles
        wanted = desired_keys(resolved.mode, resolved.offline, local_list=state.supports_local_list)
        await self._apply_keys(
            charger, state, wanted, current=current, readonly=readonly, unknown=unknown
        )
        if resolved.mode is not AuthMode.KNOWN_CARDS:
            state.list_status = ListStatus.NOT_USED
            state.clear_cache = False
        elif not state.supports_local_list:
            if state.list_status is not ListStatus.NOT_SUPPORTED:
                _LOGGER.info(
                    "%r has no LocalAuthListManagement: it cannot check cards while offline",
                    station_id,
                )
            state.list_status = ListStatus.NOT_SUPPORTED
        elif state.list_status is not ListStatus.NOT_SUPPORTED:
            await self._sync_list(station_id, charger, state, current)
        if state.clear_cache:
            state.clear_cache = False
            await charger.clear_cache()
        state.last_sync = self._now()

    async def _apply_keys(
        self,
        charger: Charger,
        state: StationAuthState,
        wanted: Mapping[str, str],
        *,
        current: Mapping[str, Any],
        readonly: set[str],
        unknown: set[str],
    ) -> None:
        state.keys = {
            k: s if (s := state.keys.get(k)) is not None and s.value == v else KeyState(v)
            for k, v in wanted.items()
        }
        for key, key_state in state.keys.items():
            value = key_state.value
            if key in unknown:
                key_state.status = KeyStatus.NOT_SUPPORTED
                continue
            if str(current.get(key, "")).casefold() == value:
                if key_state.status is not KeyStatus.REBOOT_REQUIRED:
                    key_state.status = KeyStatus.APPLIED
                continue
            if key_state.status in (KeyStatus.REJECTED, KeyStatus.NOT_SUPPORTED):
                continue  # refused this value since its last boot: not asked again
            if key in readonly:
                key_state.status = KeyStatus.READ_ONLY
                key_state.detail = f"is {current.get(key)!r}"
                continue
            try:
                status = await charger.set_configuration(key, value)
            except ChargerRejectedError as err:
                key_state.status = (
                    KeyStatus.NOT_SUPPORTED if err.status == "NotSupported" else KeyStatus.REJECTED
                )
                key_state.detail = err.status
                continue
            except ChargerError as err:
                key_state.status = KeyStatus.FAILED
                key_state.detail = str(err)
                raise
            key_state.status = (
                KeyStatus.REBOOT_REQUIRED if status == "RebootRequired" else KeyStatus.APPLIED
            )
            key_state.detail = None

    async def _sync_list(
        self,
        station_id: str,
        charger: Charger,
        state: StationAuthState,
        current: Mapping[str, Any],
    ) -> None:
        chunk = _positive(current.get("SendLocalListMaxLength")) or DEFAULT_CHUNK
        capacity = _positive(current.get("LocalAuthListMaxLength"))
        desired = self._entries(station_id)
        truncated = capacity is not None and len(desired) > capacity
        if truncated:
            desired = dict(list(desired.items())[:capacity])
        try:
            version = await charger.get_local_list_version()
            if version < 0:
                state.list_status = ListStatus.NOT_SUPPORTED
                return
            if state.list_version is None or version != state.list_version:
                if state.list_version is not None:
                    _LOGGER.info(
                        "%r: local list version %s, expected %s: sent again in full",
                        station_id,
                        version,
                        state.list_version,
                    )
                await self._send_full(charger, state, desired, chunk, version)
            else:
                await self._send_differential(charger, state, desired, chunk)
        except ChargerRejectedError as err:
            state.list_error = f"{err.action}: {err.status}"
            if err.status == "NotSupported":
                state.list_status = ListStatus.NOT_SUPPORTED
            else:
                # VersionMismatch or Failed: start from a full list next time.
                state.list_status = ListStatus.FAILED
                state.list_version = None
            return
        state.list_status = ListStatus.TRUNCATED if truncated else ListStatus.IN_SYNC
        state.list_error = None

    async def _send_full(
        self,
        charger: Charger,
        state: StationAuthState,
        desired: dict[str, LocalListEntry],
        chunk: int,
        charger_version: int,
    ) -> None:
        version = max(charger_version, state.list_version or 0)
        items = list(desired.items())
        chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)] or [[]]
        sent: dict[str, LocalListEntry] = {}
        state.list_version = None  # unknown until the first chunk is confirmed
        for i, part in enumerate(chunks):
            version += 1
            await charger.send_local_list(version, [e for _, e in part], full=i == 0)
            sent.update(part)
            state.list_version, state.list_entries = version, dict(sent)
        state.full_syncs += 1

    async def _send_differential(
        self,
        charger: Charger,
        state: StationAuthState,
        desired: dict[str, LocalListEntry],
        chunk: int,
    ) -> None:
        held = state.list_entries or {}
        changes: list[tuple[str, LocalListEntry | None]] = [
            (k, e) for k, e in desired.items() if held.get(k) != e
        ]
        changes += [(k, None) for k in held.keys() - desired.keys()]
        if not changes:
            return
        version = state.list_version or 0
        for i in range(0, len(changes), chunk):
            part = changes[i : i + chunk]
            version += 1
            entries = [
                e if e is not None else LocalListEntry(held[k].id_tag, None) for k, e in part
            ]
            await charger.send_local_list(version, entries, full=False)
            new = dict(state.list_entries or {})
            for k, e in part:
                if e is None:
                    new.pop(k, None)
                else:
                    new[k] = e
            state.list_version, state.list_entries = version, new
        state.differential_syncs += 1


def _positive(value: Any) -> int | None:
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number > 0 else None
