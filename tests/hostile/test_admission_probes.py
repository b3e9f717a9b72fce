"""Port scans, TLS and HTTP probes on the OCPP port: one quiet line each, no traceback, no harm."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ocpp.v16 import call
from ocpp_peer import FAILSAFE_S
import pytest
from test_ocpp_connection import _tls_contexts

PROBES = {
    "connect-and-close": b"",
    "tls-client-hello": bytes.fromhex("16030100a5010000a10303") + b"\x00" * 64,
    "http-get-without-upgrade": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "http-post": b"POST /ocpp/CP1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    "garbage-request-line": b"\x00\x01\x02 hello\r\n\r\n",
    "ssh-banner": b"SSH-2.0-OpenSSH_9.6\r\n",
    "half-request": b"GET /ocpp/CP1 HTTP/1.1\r\nHost: x\r\n",
    "huge-header": b"GET /ocpp/CP1 HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n",
}


async def probe(port: int, payload: bytes) -> bytes:
    """Send `payload` on a plain TCP connection, half-close, return what comes back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if payload:
            writer.write(payload)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(FAILSAFE_S):
            return await reader.read()
    except ConnectionError:
        return b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def loud(records: list[logging.LogRecord]) -> list[str]:
    """Records that would show in a log at warning level, or carry a traceback.

    Not asyncio's debug-mode "Executing <callback> took 0.1 seconds" of a busy test machine.
    """
    return [
        f"{r.name} {r.levelname}: {r.getMessage()}"
        for r in records
        if (r.levelno >= logging.WARNING or r.exc_info or r.exc_text)
        and not (r.name == "asyncio" and r.getMessage().startswith("Executing "))
    ]


@pytest.mark.parametrize("payload", PROBES.values(), ids=PROBES.keys())
async def test_probe_of_the_port_is_one_quiet_line_without_traceback(
    central_system, connect_cp, caplog, payload
):
    caplog.set_level(logging.DEBUG)
    site, cs, _ = central_system
    good = await connect_cp("GOOD")
    caplog.clear()

    await probe(cs.port, payload)
    await good.call(call.Heartbeat(), suppress=False)  # the port still serves chargers

    assert loud(caplog.records) == []
    assert site.chargers.keys() == {"GOOD"}


async def test_plain_http_and_scans_on_a_tls_port_log_no_error(
    start_central_system, connect_cp, caplog, tmp_path
):
    # As in production: in debug mode (HA's `debug:`), the event loop itself reports every
    # failed TLS handshake, a traceback included, through HA's exception handler.
    asyncio.get_running_loop().set_debug(False)
    server_ssl, _ = _tls_contexts(tmp_path)
    _, cs, _ = await start_central_system(ssl_context=server_ssl)
    caplog.set_level(logging.DEBUG)

    for payload in PROBES.values():
        await probe(cs.port, payload)

    assert loud(caplog.records) == []
