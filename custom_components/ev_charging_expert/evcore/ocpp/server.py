"""The OCPP-J central system: one websocket port for every charger.

`ws[s]://host:port/<anything>/<charge box identity>`: the identity is the last path segment,
percent-decoded. The handshake checks, in order: an identity is present, the subprotocol of an
OCPP version we speak is offered (`ocpp1.6`), the charger was not removed, and its password
when it has one (OCPP security profile 1, HTTP Basic auth; profile 2 when the server runs with
TLS). The subprotocol chosen picks the handler (`HANDLERS`).
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

from . import v16

if TYPE_CHECKING:
    from collections.abc import Mapping
    import ssl

    from websockets.asyncio.server import Server
    from websockets.http11 import Request, Response

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
    return str(remote[0]) if isinstance(remote, tuple) and remote else "?"


def station_id_from_path(path: str) -> str | None:
    """Return the charge box identity: the last non-empty segment of the URL path."""
    segments = [s for s in urlsplit(path).path.split("/") if s]
    if not segments:
        return None
    return unquote(segments[-1]) or None


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
    ) -> None:
        self._site = site
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._request_timeout = request_timeout
        self._max_frame = max_frame
        self._ping_interval = ping_interval
        self._server: Server | None = None

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

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        station_id = station_id_from_path(request.path)
        if station_id is None:
            return connection.respond(
                HTTPStatus.NOT_FOUND, "The URL must end with the charge box identity.\n"
            )
        offered = [
            p.strip()
            for value in request.headers.get_all("Sec-WebSocket-Protocol")
            for p in value.split(",")
        ]
        if not any(p in HANDLERS for p in offered):
            _LOGGER.warning(
                "%r: refused, none of the subprotocols %s offered (offered %r)",
                station_id,
                SUBPROTOCOLS,
                offered,
            )
            return connection.respond(
                HTTPStatus.BAD_REQUEST,
                f"This central system speaks {_SPOKEN}: offer the "
                f"{' or '.join(SUBPROTOCOLS)} subprotocol.\n",
            )
        refusal = self._site.admission_refusal(station_id)
        if refusal is not None:
            _LOGGER.info("%r: refused, %s", station_id, refusal)
            return connection.respond(HTTPStatus.FORBIDDEN, f"{refusal}\n")
        if self._site.password_required(station_id):
            credentials = _basic_auth(request)
            if (
                credentials is None
                or credentials[0] != station_id
                or not self._site.check_password(station_id, credentials[1])
            ):
                _LOGGER.warning("%r: refused, wrong or missing password", station_id)
                response = connection.respond(
                    HTTPStatus.UNAUTHORIZED, "Wrong or missing charger password.\n"
                )
                response.headers["WWW-Authenticate"] = 'Basic realm="OCPP", charset="UTF-8"'
                return response
        return None

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
        _LOGGER.info("%r: connected from %s", station_id, connection.remote_address)
        try:
            await handler.start()
        except ConnectionClosed as err:
            _LOGGER.info("%r: disconnected (%s)", station_id, err)
        except Exception:
            _LOGGER.exception("%r: connection failed", station_id)
            await connection.close(code=1011, reason="Internal error")
        finally:
            handler.cancel_tasks()
            self._site.detach(handler)
