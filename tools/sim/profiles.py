"""OCPP 1.6 smart charging, charge point side: the profiles a charger holds and the limit they set.

Pure code (no I/O, no clock of its own): the simulator feeds it SetChargingProfile and
ClearChargingProfile requests and asks for the limit at a given time.

Rules (OCPP 1.6 edition 2, section 3.13 and the ChargingProfilePurposeType definitions):

- ChargePointMaxProfile only on connector 0; TxProfile only on a connector (> 0) that has a
  running transaction (and for that transaction when `transactionId` is given); TxDefaultProfile
  on connector 0 applies to every connector, on connector N to that connector only.
- A new profile replaces the one with the same `chargingProfileId`, and the one with the same
  connector, purpose and stack level.
- For each purpose the profile with the highest stack level that is valid now (validFrom,
  validTo) and whose schedule covers now (started, not past its duration) sets the limit; if it
  does not apply, the next lower stack level does.
- A TxProfile overrules the TxDefaultProfile. TxDefaultProfiles installed on connector N
  replace the connector-0 ones for that connector (when at least one of them applies now).
- The connector limit is the minimum of the ChargePointMaxProfile limit and the Tx/TxDefault one.
- Limits in W become A with `limit / (voltage * numberPhases)`, numberPhases defaulting to 3.
- TxProfiles are deleted when their transaction ends.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
import re
from typing import Any

CHARGE_POINT_MAX = "ChargePointMaxProfile"
TX_DEFAULT = "TxDefaultProfile"
TX = "TxProfile"
PURPOSES = (CHARGE_POINT_MAX, TX_DEFAULT, TX)

ACCEPTED = "Accepted"
REJECTED = "Rejected"
NOT_SUPPORTED = "NotSupported"
UNKNOWN = "Unknown"

_RECURRENCE = {"Daily": timedelta(days=1), "Weekly": timedelta(days=7)}
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def _snake(data: Any) -> Any:
    """CamelCase keys to snake_case, recursively (the ocpp library hands us snake_case)."""
    if isinstance(data, dict):
        return {_CAMEL.sub(r"_\1", k).lower(): _snake(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_snake(v) for v in data]
    if isinstance(data, Decimal):  # the ocpp library parses SetChargingProfile floats as Decimal
        return float(data)
    return data


def parse_datetime(value: Any) -> datetime | None:
    """Parse an OCPP timestamp (a naive one is taken as UTC)."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class ProfileError(ValueError):
    """A charging profile that the charger refuses."""


@dataclass(frozen=True, slots=True)
class Period:
    """One chargingSchedulePeriod."""

    start: float  # seconds from the start of the schedule
    limit: float  # in the schedule's unit
    number_phases: int | None = None


@dataclass(frozen=True, slots=True)
class ChargingProfile:
    """A parsed csChargingProfiles."""

    profile_id: int
    stack_level: int
    purpose: str
    kind: str
    unit: str
    periods: tuple[Period, ...]
    recurrency: str | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    transaction_id: int | None = None
    duration: float | None = None
    start_schedule: datetime | None = None
    min_rate: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_ocpp(cls, data: dict[str, Any]) -> ChargingProfile:
        """Build from the OCPP dict (snake_case as the ocpp library gives it, or camelCase)."""
        d = _snake(data)
        try:
            schedule = d["charging_schedule"]
            periods = tuple(
                Period(
                    start=float(p["start_period"]),
                    limit=float(p["limit"]),
                    number_phases=int(p["number_phases"])
                    if p.get("number_phases") is not None
                    else None,
                )
                for p in schedule["charging_schedule_period"]
            )
            profile = cls(
                profile_id=int(d["charging_profile_id"]),
                stack_level=int(d["stack_level"]),
                purpose=str(d["charging_profile_purpose"]),
                kind=str(d["charging_profile_kind"]),
                unit=str(schedule["charging_rate_unit"]),
                periods=tuple(sorted(periods, key=lambda p: p.start)),
                recurrency=d.get("recurrency_kind"),
                valid_from=parse_datetime(d.get("valid_from")),
                valid_to=parse_datetime(d.get("valid_to")),
                transaction_id=int(d["transaction_id"])
                if d.get("transaction_id") is not None
                else None,
                duration=float(schedule["duration"])
                if schedule.get("duration") is not None
                else None,
                start_schedule=parse_datetime(schedule.get("start_schedule")),
                min_rate=float(schedule["min_charging_rate"])
                if schedule.get("min_charging_rate") is not None
                else None,
                raw=d,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ProfileError(f"malformed charging profile: {err!r}") from err
        if profile.purpose not in PURPOSES:
            raise ProfileError(f"unknown purpose {profile.purpose}")
        if profile.kind not in ("Absolute", "Recurring", "Relative"):
            raise ProfileError(f"unknown kind {profile.kind}")
        if profile.kind == "Recurring" and (
            profile.recurrency not in _RECURRENCE or profile.start_schedule is None
        ):
            raise ProfileError("a Recurring profile needs recurrencyKind and startSchedule")
        if not profile.periods or profile.periods[0].start != 0:
            raise ProfileError("the first schedule period must start at 0")
        if profile.unit not in ("A", "W"):
            raise ProfileError(f"unknown charging rate unit {profile.unit}")
        if any(p.limit < 0 for p in profile.periods):
            raise ProfileError("negative limit")
        return profile

    def is_valid(self, now: datetime) -> bool:
        """Inside validFrom/validTo."""
        if self.valid_from is not None and now < self.valid_from:
            return False
        return self.valid_to is None or now < self.valid_to

    def period_at(self, now: datetime, schedule_start: datetime) -> Period | None:
        """The period in force at `now`, or None when the schedule does not cover `now`."""
        start = schedule_start
        if self.kind == "Recurring":
            assert self.start_schedule is not None  # checked in from_ocpp  # noqa: S101
            every = _RECURRENCE[self.recurrency or "Daily"]
            start = self.start_schedule + every * ((now - self.start_schedule) // every)
        elapsed = (now - start).total_seconds()
        if elapsed < 0 or (self.duration is not None and elapsed >= self.duration):
            return None
        current = None
        for period in self.periods:
            if period.start > elapsed:
                break
            current = period
        return current


@dataclass(frozen=True, slots=True)
class Limit:
    """A limit in force: amps per phase and, when the schedule says so, the phases allowed."""

    amps: float
    phases: int | None = None

    def min(self, other: Limit | None) -> Limit:
        """The stricter of two limits."""
        if other is None:
            return self
        phases = [p for p in (self.phases, other.phases) if p is not None]
        return Limit(min(self.amps, other.amps), min(phases) if phases else None)


@dataclass(frozen=True, slots=True)
class ReceivedProfile:
    """A SetChargingProfile as received, with the answer given."""

    at: datetime
    connector_id: int
    profile: dict[str, Any]
    status: str
    reason: str | None = None


@dataclass(slots=True)
class _Installed:
    connector_id: int
    profile: ChargingProfile
    installed_at: datetime


class ProfileStore:
    """Charging profiles installed on one charger and the composite limit they give."""

    def __init__(
        self,
        connectors: int,
        *,
        max_stack_level: int = 8,
        max_profiles: int = 20,
        voltage: float = 230.0,
        allowed_units: tuple[str, ...] = ("A", "W"),
        history: int | None = None,
    ) -> None:
        self.connectors = connectors
        self.max_stack_level = max_stack_level
        self.max_profiles = max_profiles
        self.voltage = voltage
        self.allowed_units = allowed_units
        # Every SetChargingProfile received (the last `history` ones when bounded).
        self.received: deque[ReceivedProfile] = deque(maxlen=history)
        self._installed: list[_Installed] = []
        # Running transaction per connector: (transaction id, start time).
        self._transactions: dict[int, tuple[int, datetime]] = {}

    # ------------------------------------------------------------------ transactions
    def start_transaction(
        self, connector_id: int, transaction_id: int, started_at: datetime
    ) -> None:
        """A transaction runs on the connector (TxProfiles and Relative schedules refer to it)."""
        self._transactions[connector_id] = (transaction_id, started_at)

    def end_transaction(self, connector_id: int) -> None:
        """The connector's transaction ended: its TxProfiles are deleted."""
        self._transactions.pop(connector_id, None)
        self._installed = [
            i
            for i in self._installed
            if not (i.connector_id == connector_id and i.profile.purpose == TX)
        ]

    # ------------------------------------------------------------------ requests
    def set_profile(self, connector_id: int, profile: dict[str, Any], now: datetime) -> str:
        """Handle SetChargingProfile; returns "Accepted" or "Rejected" and records the request."""
        try:
            parsed = ChargingProfile.from_ocpp(profile)
            self._check(connector_id, parsed)
        except ProfileError as err:
            self.received.append(
                ReceivedProfile(now, connector_id, _snake(profile), REJECTED, str(err))
            )
            return REJECTED
        self._installed = [
            i
            for i in self._installed
            if i.profile.profile_id != parsed.profile_id
            and not (
                i.connector_id == connector_id
                and i.profile.purpose == parsed.purpose
                and i.profile.stack_level == parsed.stack_level
            )
        ]
        # Expired profiles never apply again: drop them before counting.
        self._installed = [
            i for i in self._installed if i.profile.valid_to is None or i.profile.valid_to > now
        ]
        if len(self._installed) >= self.max_profiles:
            self.received.append(
                ReceivedProfile(now, connector_id, parsed.raw, REJECTED, "too many profiles")
            )
            return REJECTED
        self._installed.append(_Installed(connector_id, parsed, now))
        self.received.append(ReceivedProfile(now, connector_id, parsed.raw, ACCEPTED))
        return ACCEPTED

    def _check(self, connector_id: int, profile: ChargingProfile) -> None:
        if not 0 <= connector_id <= self.connectors:
            raise ProfileError(f"no connector {connector_id}")
        if profile.stack_level < 0 or profile.stack_level > self.max_stack_level:
            raise ProfileError(f"stack level {profile.stack_level} > {self.max_stack_level}")
        if profile.unit not in self.allowed_units:
            raise ProfileError(f"charging rate unit {profile.unit} not allowed")
        if profile.purpose == CHARGE_POINT_MAX and connector_id != 0:
            raise ProfileError("ChargePointMaxProfile only on connector 0")
        if profile.purpose == TX:
            if connector_id == 0:
                raise ProfileError("TxProfile only on a connector > 0")
            running = self._transactions.get(connector_id)
            if running is None:
                raise ProfileError("TxProfile without a running transaction")
            if profile.transaction_id is not None and profile.transaction_id != running[0]:
                raise ProfileError(
                    f"TxProfile for transaction {profile.transaction_id}, running {running[0]}"
                )

    def clear(
        self,
        *,
        profile_id: int | None = None,
        connector_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> str:
        """Handle ClearChargingProfile: "Accepted" when something was removed, else "Unknown".

        With an id, only that profile is removed (the other criteria are ignored).
        """
        if profile_id is not None:
            keep = [i for i in self._installed if i.profile.profile_id != profile_id]
        else:
            keep = [
                i
                for i in self._installed
                if not (
                    (connector_id is None or i.connector_id == connector_id)
                    and (purpose is None or i.profile.purpose == purpose)
                    and (stack_level is None or i.profile.stack_level == stack_level)
                )
            ]
        removed = len(keep) != len(self._installed)
        self._installed = keep
        return ACCEPTED if removed else UNKNOWN

    # ------------------------------------------------------------------ queries
    def installed(self, connector_id: int | None = None) -> list[ChargingProfile]:
        """Profiles installed (on one connector, or all)."""
        return [
            i.profile
            for i in self._installed
            if connector_id is None or i.connector_id == connector_id
        ]

    def to_amps(self, period: Period, unit: str) -> Limit:
        """A period's limit in A per phase."""
        if unit == "W":
            phases = period.number_phases or 3
            return Limit(period.limit / (self.voltage * phases), period.number_phases)
        return Limit(period.limit, period.number_phases)

    def _best(
        self, connector_id: int, purpose: str, now: datetime, target: int | None = None
    ) -> Limit | None:
        """Limit of the highest stack level profile of `purpose` on `connector_id` that applies
        now; Relative schedules start with the transaction of `target` (default: the same)."""
        target = connector_id if target is None else target
        candidates = sorted(
            (
                i
                for i in self._installed
                if i.connector_id == connector_id and i.profile.purpose == purpose
            ),
            key=lambda i: i.profile.stack_level,
            reverse=True,
        )
        for inst in candidates:
            profile = inst.profile
            if not profile.is_valid(now):
                continue
            period = profile.period_at(now, self._schedule_start(inst, target, now))
            if period is not None:
                return self.to_amps(period, profile.unit)
        return None

    def _schedule_start(self, inst: _Installed, target: int, now: datetime) -> datetime:
        profile = inst.profile
        if profile.kind == "Relative":
            running = self._transactions.get(target)
            if running is not None:
                return running[1]
            return now  # no transaction: the schedule starts now (period 0 applies)
        return profile.start_schedule or inst.installed_at

    def station_limit(self, now: datetime) -> Limit | None:
        """The ChargePointMaxProfile limit (the whole station), or None."""
        return self._best(0, CHARGE_POINT_MAX, now)

    def tx_limit(self, connector_id: int, now: datetime) -> Limit | None:
        """The TxProfile limit of the connector, else its TxDefaultProfile limit, or None."""
        limit = self._best(connector_id, TX, now) if connector_id in self._transactions else None
        if limit is None and connector_id > 0:
            limit = self._best(connector_id, TX_DEFAULT, now)
        if limit is None:
            limit = self._best(0, TX_DEFAULT, now, target=connector_id)
        return limit

    def limit(self, connector_id: int, now: datetime) -> Limit | None:
        """Composite limit of a connector: min(ChargePointMax, Tx or TxDefault); None = none."""
        station = self.station_limit(now)
        if connector_id == 0:
            return station
        tx = self.tx_limit(connector_id, now)
        if tx is None:
            return station
        return tx.min(station)

    def limit_amps(self, connector_id: int, now: datetime) -> float | None:
        """Composite limit of a connector in A per phase, or None when no profile applies."""
        limit = self.limit(connector_id, now)
        return None if limit is None else limit.amps
