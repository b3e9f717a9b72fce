"""The OCPP-J central system: one websocket port for every charger.

`ws[s]://host:port/<anything>/<charge box identity>`: the identity is the last path segment,
percent-decoded. The handshake checks, in order: an identity is present and follows the identity
rule (`admission.identity_problem`), the subprotocol of an OCPP version we speak is offered
(`ocpp1.6`), the port is not full, the registry could be read and the charger was not removed,
then its password when it has one (OCPP security profile 1, HTTP Basic auth; profile 2 when the
server runs with TLS), or else the cap on unauthenticated connections per source address. The
limits are `admission.AdmissionLimits`. The subprotocol chosen picks the handler (`HANDLERS`).
"""

from __future__ import annotations

import base64
import binascii
from http import HTTPStatus
import logging
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ..admission import (
    AdmissionLimits,
    PasswordGate,
    Refusal,
    RefusalLog,
    address_key,
    default_executor,
    identity_problem,
)
from . import v16

if TYPE_CHECKING:
    from collections.abc import Mapping
    import ssl

    from websockets.asyncio.server import Server
    from websockets.http11 import Request, Response

    from ..admission import Executor
    from ..site import Site

_LOGGER = logging.getLogger(__name__)

# Subprotocol -> the handler of that OCPP version, in order of preference.
HANDLERS: dict[str, type[v16.ChargePointV16]] = {v16.SUBPROTOCOL: v16.ChargePointV16}
SUBPROTOCOLS = tuple(HANDLERS)
_SPOKEN = " or ".join(handler.VERSION for handler in HANDLERS.values())
# OCPP frames are small; GetConfiguration with every key is the largest we expect.
DEFAULT_MAX_FRAME = 256 * 1024


# Request headers that carry credentials: websockets logs every header at debug level.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
# OCPP keys whose value is a secret: websockets logs every frame at debug level, its head and
# tail (a secret value may be the tail, and its key cut off in the middle).
_SECRET_KEYS = (b"AuthorizationKey",)


class _WebsocketsLog(logging.LoggerAdapter[logging.Logger]):
    """websockets' logger for our port: a failed handshake is one debug line, no credentials.

    A port scan, a TLS or HTTP probe is not an error worth a traceback. websockets wraps this
    adapter in one of its own, whose `error()` and `debug()` end in our `log()`: the filtering
    must be here, not in `error()`.
    """

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if msg == "opening handshake failed":
            kwargs.pop("exc_info", None)
            error = sys.exc_info()[1]
            reason = _describe(error) if error is not None else "no reason"
            level, msg = logging.DEBUG, "opening handshake from %s failed: %r"
            args = (_peer(kwargs.get("extra")), reason)
        elif msg == "< %s: %s" and args and str(args[0]).lower() in _SECRET_HEADERS:
            args = (args[0], "<redacted>")
        elif msg in {"> %s", "< %s"} and args and _carries_secret(args[0]):
            frame: Any = args[0]
            args = (f"{frame.opcode.name} <redacted: carries a secret> [{len(frame.data)} bytes]",)
        super().log(level, msg, *args, **kwargs)


def _carries_secret(frame: object) -> bool:
    data = getattr(frame, "data", None)
    return isinstance(data, bytes | bytearray) and any(key in data for key in _SECRET_KEYS)


def _describe(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    if error.__cause__ is not None:
        text += f" ({type(error.__cause__).__name__}: {error.__cause__})"
    return text


def _peer(extra: Mapping[str, object] | None) -> str:
    connection = (extra or {}).get("websocket")
    remote = getattr(connection, "remote_address", None)
    return address_key(remote) if remote else "?"


def station_id_from_path(path: str) -> str | None:
    """Return the charge box identity: the last non-empty segment of the URL path.

    Percent-decoded; bytes that are not UTF-8 stay as surrogates, which the identity rule
    refuses.
    """
    segments = [s for s in urlsplit(path).path.split("/") if s]
    if not segments:
        return None
    return unquote(segments[-1], errors="surrogateescape") or None


def _respond(connection: ServerConnection, refusal: Refusal) -> Response:
    text = refusal.reason[:1].upper() + refusal.reason[1:]
    response = connection.respond(refusal.status, f"{text}.\n")
    if refusal.challenge:
        response.headers["WWW-Authenticate"] = 'Basic realm="OCPP", charset="UTF-8"'
    if refusal.retry_after is not None:
        response.headers["Retry-After"] = str(refusal.retry_after)
    return response


def _basic_auth(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class CentralSystem:
    """Websocket server that attaches every charger connection to the site."""

    def __init__(
        self,
        site: Site,
        *,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None = None,
        request_timeout: float = v16.DEFAULT_TIMEOUT,
        max_frame: int = DEFAULT_MAX_FRAME,
        ping_interval: float | None = 60,
        limits: AdmissionLimits | None = None,
        executor: Executor | None = None,
    ) -> None:
        self._site = site
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._request_timeout = request_timeout
        self._max_frame = max_frame
        self._ping_interval = ping_interval
        self._server: Server | None = None
        self.limits = limits or AdmissionLimits()
        # Through the site at each call: a test or simulation may swap its clock.
        self.refusals = RefusalLog(lambda: site.clock.monotonic(), self.limits)  # noqa: PLW0108
        self._passwords = PasswordGate(
            site, self.limits, executor or default_executor, self.refusals
        )
        # Connections of chargers that are not accepted and present no password, by source.
        self._unauthenticated: dict[str, dict[ServerConnection, str]] = {}

    @property
    def port(self) -> int:
        """The port actually bound (useful when started on port 0)."""
        if self._server is None:
            return self._port
        return int(next(iter(self._server.sockets)).getsockname()[1])

    async def start(self) -> None:
        """Bind and start accepting chargers; raises OSError when the port is taken."""
        self._server = await serve(
            self._handle,
            self._host,
            self._port,
            ssl=self._ssl,
            subprotocols=list(SUBPROTOCOLS),  # type: ignore[arg-type]
            process_request=self._process_request,
            max_size=self._max_frame,
            ping_interval=self._ping_interval,
            ping_timeout=self._ping_interval,
            server_header=None,
            logger=_WebsocketsLog(logging.getLogger(f"{__name__}.websockets")),
        )
        _LOGGER.info("OCPP central system listening on %s:%s", self._host, self.port)

    async def stop(self) -> None:
        """Close every connection and the port; returns when all handlers have finished."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close(close_connections=True)
        await server.wait_closed()

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        address = address_key(connection.remote_address)
        station_id = station_id_from_path(request.path)
        if station_id is None:
            return self._refuse(
                connection,
                address,
                Refusal(HTTPStatus.NOT_FOUND, "the URL must end with the charge box identity"),
            )
        if (problem := identity_problem(station_id)) is not None:
            # Not echoed: it is what the rule keeps out of logs and answers.
            return self._refuse(
                connection,
                address,
                Refusal(HTTPStatus.BAD_REQUEST, f"invalid charge box identity: {problem}"),
            )
        who = f"{station_id!r} from {address}"
        refusal = self._refusal(station_id, request)
        if refusal is not None:
            return self._refuse(connection, who, refusal)
        if self._site.password_required(station_id):
            # The gate logs its own refusals (per identity and address, with back-off).
            refusal = await self._passwords.check(station_id, _basic_auth(request), address)
            return None if refusal is None else _respond(connection, refusal)
        if not self._site.is_accepted(station_id):
            refusal = self._count_unauthenticated(connection, station_id, address)
            if refusal is not None:
                return self._refuse(connection, who, refusal)
        return None

    def _refuse(self, connection: ServerConnection, who: str, refusal: Refusal) -> Response:
        self.refusals.refused(who, refusal)
        return _respond(connection, refusal)

    def _refusal(self, station_id: str, request: Request) -> Refusal | None:
        """The checks of a valid identity that need no password: subprotocol, room, registry."""
        offered = [
            p.strip()
            for value in request.headers.get_all("Sec-WebSocket-Protocol")
            for p in value.split(",")
        ]
        if not any(p in HANDLERS for p in offered):
            return Refusal(
                HTTPStatus.BAD_REQUEST,
                f"this central system speaks {_SPOKEN}: offer the "
                f"{' or '.join(SUBPROTOCOLS)} subprotocol",
            )
        server = self._server
        if server is not None and len(server.handlers) > self.limits.max_connections:
            return Refusal(
                HTTPStatus.SERVICE_UNAVAILABLE,
                f"too many connections (limit {self.limits.max_connections})",
                retry_after=60,
            )
        if (reason := self._site.admission_refusal(station_id)) is not None:
            status = (
                HTTPStatus.SERVICE_UNAVAILABLE
                if self._site.registry_problem is not None
                else HTTPStatus.FORBIDDEN
            )
            return Refusal(status, reason)
        return None

    def _count_unauthenticated(
        self, connection: ServerConnection, station_id: str, address: str
    ) -> Refusal | None:
        """Count an unknown charger's connection against its source; refuse past the cap."""
        open_here = self._unauthenticated.setdefault(address, {})
        live = self._server.handlers if self._server is not None else {}
        for other, other_id in list(open_here.items()):
            # Handshakes that failed after this check never reached _handle: drop them here.
            if other not in live or self._site.is_accepted(other_id):
                del open_here[other]
        if len(open_here) >= self.limits.max_unauthenticated_per_address:
            if not open_here:
                del self._unauthenticated[address]
            return Refusal(
                HTTPStatus.TOO_MANY_REQUESTS,
                "too many connections of unknown chargers from this address "
                f"(limit {self.limits.max_unauthenticated_per_address})",
                retry_after=60,
            )
        open_here[connection] = station_id
        return None

    def _forget_connection(self, connection: ServerConnection) -> None:
        address = address_key(connection.remote_address)
        open_here = self._unauthenticated.get(address)
        if open_here is not None:
            open_here.pop(connection, None)
            if not open_here:
                del self._unauthenticated[address]

    async def _handle(self, connection: ServerConnection) -> None:
        station_id = station_id_from_path(connection.request.path)  # type: ignore[union-attr]
        assert station_id is not None  # checked in _process_request  # noqa: S101
        handler_class = HANDLERS[connection.subprotocol or SUBPROTOCOLS[0]]
        handler = handler_class(
            station_id, connection, self._site, request_timeout=self._request_timeout
        )
        old = self._site.attach(handler)
        if old is not None:
            _LOGGER.info("%r: reconnected; closing its previous connection", station_id)
            # The new connection is already in charge; the old one goes in the background.
            handler.spawn(old.close(code=1001, reason="Replaced by a new connection"))
        _LOGGER.info("%r: connected from %s", station_id, address_key(connection.remote_address))
        try:
            await handler.start()
        except ConnectionClosed as err:
            _LOGGER.info("%r: disconnected (%s)", station_id, err)
        except Exception:
            _LOGGER.exception("%r: connection failed", station_id)
            await connection.close(code=1011, reason="Internal error")
        finally:
            handler.cancel_tasks()
            self._forget_connection(connection)
            self._site.detach(handler)
