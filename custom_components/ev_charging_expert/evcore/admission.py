"""Who may open a connection: the identity rule, connection caps and password checks.

Everything a stranger reaches before a charger is known is bounded here, and every bound is a
field of `AdmissionLimits` (the user documentation, docs/security.md, lists them). A refusal is
a `Refusal` (an HTTP status, a reason for the charger and for the log); `RefusalLog` writes one
log line per source and reason per interval, so that a flood of refusals cannot flood the log.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
import hashlib
import hmac
from http import HTTPStatus
import ipaddress
import logging
import secrets
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .site import Site

_LOGGER = logging.getLogger(__name__)

IDENTITY_MAX_LENGTH = 48
_PBKDF2_ROUNDS = 20_000


def identity_problem(identity: str) -> str | None:
    """Why `identity` cannot be a charge box identity; None when it can.

    The rule: after percent-decoding, valid UTF-8 of 1 to 48 characters (OCPP's limit), every
    one printable (no control, format, separator or private-use character; the space is
    allowed), no space at either end. It keeps identities from forging log lines, hiding
    characters from the user, or looking like another charger's.
    """
    if not identity:
        return "it is empty"
    try:
        identity.encode()
    except UnicodeEncodeError:
        return "it is not valid UTF-8 once percent-decoded"
    if len(identity) > IDENTITY_MAX_LENGTH:
        return f"it is longer than {IDENTITY_MAX_LENGTH} characters"
    if not identity.isprintable():
        return "it contains a control or invisible character"
    if identity != identity.strip():
        return "it starts or ends with a space"
    return None


def hash_password(password: str, salt: bytes | None = None) -> str:
    """Salted PBKDF2 of a charger's AuthorizationKey, as stored in the registry."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _PBKDF2_ROUNDS)
    return f"pbkdf2_sha256${_PBKDF2_ROUNDS}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Compare a presented password with a stored hash, in constant time; blocking (PBKDF2)."""
    try:
        _, rounds, salt, digest = stored.split("$")
        computed = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), bytes.fromhex(salt), int(rounds)
        )
    except ValueError:
        return False
    return hmac.compare_digest(computed.hex(), digest)


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    """The bounds of what a stranger can make the central system hold or do."""

    max_connections: int = 2000
    """Open connections, handshakes in progress included, of all chargers together."""
    max_unauthenticated_per_address: int = 20
    """Open connections from one source address (IPv6: one /64) of chargers that are not
    accepted and present no password. Raise it when more new chargers share one address."""
    max_verifications: int = 4
    """Password checks (PBKDF2, in the executor) in flight; beyond, 503 until one ends."""
    identity_failures: int = 5
    """Wrong passwords in a row for one identity before its back-off starts."""
    address_failures: int = 20
    """Wrong passwords in a row from one source address before its back-off starts (higher
    than per identity: several chargers may share an address)."""
    first_backoff: float = 60.0
    """First back-off (s); every further one doubles it, up to `max_backoff`."""
    max_backoff: float = 900.0
    """Longest back-off (s); a key without failure for that long after its last back-off
    starts again from nothing."""
    tracked_addresses: int = 4096
    """Source addresses whose failures are remembered (the oldest is forgotten first)."""
    log_interval: float = 600.0
    """One log line per source and reason in this interval (s); the rest are counted."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A handshake refused: the HTTP answer and the reason (sent to the charger, logged)."""

    status: HTTPStatus
    reason: str
    retry_after: int | None = None
    challenge: bool = False
    """Ask for HTTP Basic credentials (401)."""


def address_key(remote: object) -> str:
    """The source a connection is counted against: the IP, or the /64 of an IPv6 address."""
    host = remote[0] if isinstance(remote, tuple) and remote else remote
    try:
        address = ipaddress.ip_address(str(host))
    except ValueError:
        return str(host)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class Executor(Protocol):
    """Runs a blocking function away from the event loop (HA: `hass.async_add_executor_job`)."""

    def __call__[T](self, func: Callable[[], T], /) -> Awaitable[T]:
        """Run `func()` in a worker thread; await its result."""
        ...


def default_executor[T](func: Callable[[], T], /) -> Awaitable[T]:
    """`loop.run_in_executor(None, func)`: the event loop's default thread pool."""
    return asyncio.get_running_loop().run_in_executor(None, func)


@dataclass(slots=True)
class _Failures:
    count: int = 0
    backoffs: int = 0
    blocked_until: float = 0.0
    last: float = 0.0


class Backoff:
    """Failures in a row per key; `threshold` of them block the key, longer each time."""

    def __init__(
        self,
        monotonic: Callable[[], float],
        limits: AdmissionLimits,
        *,
        threshold: int,
        capacity: int,
    ) -> None:
        self._monotonic = monotonic
        self._limits = limits
        self._threshold = threshold
        self._capacity = capacity
        self._keys: OrderedDict[str, _Failures] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def _entry(self, key: str) -> _Failures | None:
        entry = self._keys.get(key)
        if entry is None:
            return None
        # Quiet for `max_backoff` after its last failure and its last back-off: forgiven.
        if self._monotonic() - max(entry.last, entry.blocked_until) >= (self._limits.max_backoff):
            del self._keys[key]
            return None
        return entry

    def blocked_for(self, key: str) -> float:
        """Seconds left of the key's back-off (0: not blocked)."""
        entry = self._entry(key)
        if entry is None:
            return 0.0
        return max(entry.blocked_until - self._monotonic(), 0.0)

    def failed(self, key: str) -> float | None:
        """Count a failure; return the back-off (s) when this one starts it."""
        now = self._monotonic()
        entry = self._entry(key)
        if entry is None:
            entry = self._keys[key] = _Failures()
            while len(self._keys) > self._capacity:
                self._keys.popitem(last=False)
        self._keys.move_to_end(key)
        entry.last = now
        entry.count += 1
        if entry.count < self._threshold:
            return None
        seconds = min(
            self._limits.first_backoff * float(2**entry.backoffs), self._limits.max_backoff
        )
        entry.count = 0
        entry.backoffs += 1
        entry.blocked_until = now + seconds
        return seconds

    def succeeded(self, key: str) -> bool:
        """Forget the key's failures; return whether it had any."""
        return self._keys.pop(key, None) is not None


@dataclass(slots=True)
class _Logged:
    at: float
    repeats: int = 0


class RefusalLog:
    """Logs a refusal once per source and reason per interval; counts every one."""

    def __init__(
        self, monotonic: Callable[[], float], limits: AdmissionLimits, capacity: int = 1024
    ) -> None:
        self._monotonic = monotonic
        self._interval = limits.log_interval
        self._capacity = capacity
        self._seen: OrderedDict[tuple[str, str], _Logged] = OrderedDict()
        self.counts: dict[int, int] = {}
        """Refusals by HTTP status since the start."""

    def refused(self, source: str, refusal: Refusal, level: int = logging.INFO) -> None:
        """Count a refusal; log it unless the same one was logged less than an interval ago."""
        status = int(refusal.status)
        self.counts[status] = self.counts.get(status, 0) + 1
        key = (source, refusal.reason)
        now = self._monotonic()
        seen = self._seen.get(key)
        if seen is not None and now - seen.at < self._interval:
            seen.repeats += 1
            return
        repeats = seen.repeats if seen is not None else 0
        self._seen[key] = _Logged(now)
        self._seen.move_to_end(key)
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        _LOGGER.log(
            level,
            "%s: refused (%d), %s%s",
            source,
            refusal.status,
            refusal.reason,
            f" ({repeats} more since the last such line)" if repeats else "",
        )


class PasswordGate:
    """HTTP Basic auth of chargers that have a password: off the loop, bounded, backed off."""

    def __init__(
        self,
        site: Site,
        limits: AdmissionLimits,
        executor: Executor,
        log: RefusalLog,
    ) -> None:
        self._site = site
        self._limits = limits
        self._executor = executor
        self._log = log

        def monotonic() -> float:
            # Read through the site: a test or simulation may swap its clock.
            return site.clock.monotonic()

        self._by_identity = Backoff(
            monotonic,
            limits,
            threshold=limits.identity_failures,
            # One entry per identity with a password: the registry bounds them.
            capacity=max(limits.tracked_addresses, len(site.stations)),
        )
        self._by_address = Backoff(
            monotonic,
            limits,
            threshold=limits.address_failures,
            capacity=limits.tracked_addresses,
        )
        self.in_flight = 0

    async def check(
        self, station_id: str, credentials: tuple[str, str] | None, address: str
    ) -> Refusal | None:
        """Why the charger's credentials are refused; None to let it in."""
        who = f"{station_id!r} from {address}"
        for key, backoff in ((address, self._by_address), (station_id, self._by_identity)):
            if (seconds := backoff.blocked_for(key)) > 0:
                refusal = Refusal(
                    HTTPStatus.TOO_MANY_REQUESTS,
                    "too many wrong passwords, retry later",
                    retry_after=max(int(seconds), 1),
                )
                self._log.refused(who, refusal)
                return refusal
        if credentials is None:
            # Not a guess: a client may try without credentials first, as browsers do.
            refusal = Refusal(HTTPStatus.UNAUTHORIZED, "missing password", challenge=True)
            self._log.refused(who, refusal)
            return refusal
        if self.in_flight >= self._limits.max_verifications:
            refusal = Refusal(
                HTTPStatus.SERVICE_UNAVAILABLE, "busy checking passwords", retry_after=5
            )
            self._log.refused(address, refusal)
            return refusal
        user, password = credentials
        if user != station_id:
            ok = False
        else:
            ok = await self._verify(station_id, password)
        if ok:
            if self._by_identity.succeeded(station_id):
                self._site.authentication_recovered(station_id)
            return None
        self._failed(station_id, address)
        refusal = Refusal(HTTPStatus.UNAUTHORIZED, "wrong password", challenge=True)
        self._log.refused(who, refusal, logging.WARNING)
        return refusal

    async def _verify(self, station_id: str, password: str) -> bool:
        stored = self._site.password_hash(station_id)
        if stored is None:
            return False
        self.in_flight += 1
        try:
            return await self._executor(lambda: check_password(password, stored))
        finally:
            self.in_flight -= 1

    def _failed(self, station_id: str, address: str) -> None:
        if (seconds := self._by_address.failed(address)) is not None:
            _LOGGER.warning(
                "%s: %d wrong passwords in a row from this address; its chargers with a "
                "password are refused for %d s",
                address,
                self._limits.address_failures,
                seconds,
            )
        if (seconds := self._by_identity.failed(station_id)) is not None:
            _LOGGER.warning(
                "%r: %d wrong passwords in a row (last from %s); refused for %d s",
                station_id,
                self._limits.identity_failures,
                address,
                seconds,
            )
            self._site.authentication_failing(station_id)
