"""Connections to the central system: identity, handshake checks, TLS, reconnects, stop()."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
import ipaddress
import ssl
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.exceptions import SecurityError
from ocpp.v16 import call
from ocpp_peer import FAILSAFE_S, wait_until
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from custom_components.ev_charging_expert.evcore.events import (
    StationAccepted,
    StationAdded,
    StationPending,
    StationRemoved,
    StationUpdated,
)
from custom_components.ev_charging_expert.evcore.model import NewChargerPolicy, Registration
from custom_components.ev_charging_expert.evcore.ocpp.server import (
    CentralSystem,
    station_id_from_path,
)
from custom_components.ev_charging_expert.evcore.site import check_password

if TYPE_CHECKING:
    from pathlib import Path

    from websockets.http11 import Response


async def refused(connect_raw, path: str, **kwargs) -> Response:
    """Connect, expect the handshake to be refused, and return the HTTP response."""
    with pytest.raises(InvalidStatus) as err:
        await connect_raw(path, **kwargs)
    return err.value.response


# ---------------------------------------------------------------------- identity
@pytest.mark.parametrize(
    ("path", "station_id"),
    [
        ("/ocpp/CP%201", "CP 1"),
        ("/ocpp/CP2/", "CP2"),
        ("/some/base/path/CP3", "CP3"),
        ("/CP4", "CP4"),
        ("/ocpp/CP5?token=abc", "CP5"),
        ("/ocpp/Wallbox%2FGarage%C3%A9", "Wallbox/Garageé"),
    ],
)
async def test_identity_is_the_last_percent_decoded_path_segment(
    central_system, connect_cp, path, station_id
):
    site, _, _ = central_system
    charger = await connect_cp(station_id, path=path)

    assert charger.ws.subprotocol == "ocpp1.6"
    assert list(site.stations) == [station_id]
    assert site.charger(station_id).station_id == station_id
    assert site.stations[station_id].boot.vendor == "Acme"


@pytest.mark.parametrize("path", ["/", "//", "/?x=1"])
def test_station_id_from_path_is_none_without_a_segment(path):
    assert station_id_from_path(path) is None


@pytest.mark.parametrize("path", ["/", "//", "/?id=CP1"])
async def test_connection_without_identity_is_refused_with_404(central_system, connect_raw, path):
    site, _, _ = central_system
    response = await refused(connect_raw, path)

    assert response.status_code == 404
    assert b"charge box identity" in response.body
    assert site.stations == {}


@pytest.mark.parametrize("subprotocols", [None, ["ocpp2.0.1"], ["ocpp1.5", "ocpp2.0"]])
async def test_connection_without_ocpp16_subprotocol_is_refused_with_a_reason(
    central_system, connect_raw, subprotocols
):
    site, _, _ = central_system
    response = await refused(connect_raw, "/ocpp/CP1", subprotocols=subprotocols)

    assert response.status_code == 400
    assert response.reason_phrase == "Bad Request"
    assert b"OCPP 1.6J" in response.body
    assert b"ocpp1.6 subprotocol" in response.body
    assert site.stations == {}


async def test_ocpp16_is_selected_among_several_offered_subprotocols(central_system, connect_cp):
    charger = await connect_cp("CP1", subprotocols=["ocpp2.0.1", "ocpp1.6"])

    assert charger.ws.subprotocol == "ocpp1.6"


# ---------------------------------------------------------------------- new charger policy
async def test_new_charger_is_accepted_and_announced_with_accept_policy(central_system, connect_cp):
    site, _, _ = central_system
    events = []
    site.subscribe(events.append)

    await connect_cp("CP1")

    assert site.stations["CP1"].registration is Registration.ACCEPTED
    assert site.is_accepted("CP1")
    assert events[0] == StationAdded("CP1")
    assert StationPending("CP1") not in events


async def test_pending_charger_gets_pending_and_only_boot_and_heartbeat_are_served(
    start_central_system, connect_cp
):
    site, cs, _ = await start_central_system(
        policy=NewChargerPolicy.PENDING, heartbeat_interval=300
    )
    events = []
    site.subscribe(events.append)

    charger = await connect_cp("CP1", cs=cs, boot=False)
    answer = await charger.boot()

    assert answer.status == "Pending"
    assert answer.interval == 60  # retries soon instead of waiting a heartbeat period
    # Held in memory until the user accepts it: nothing is stored for a stranger.
    assert "CP1" not in site.stations
    assert site.pending["CP1"].registration is Registration.PENDING
    assert events[:1] == [StationPending("CP1")]
    assert site.pending["CP1"].boot.vendor == "Acme"  # shown to the user who decides

    heartbeat = await charger.call(call.Heartbeat(), suppress=False)
    assert heartbeat.current_time
    for message in (
        call.StatusNotification(connector_id=1, error_code="NoError", status="Available"),
        call.Authorize(id_tag="TAG1"),
        call.MeterValues(
            connector_id=1,
            meter_value=[{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [{"value": "1"}]}],
        ),
        call.DataTransfer(vendor_id="Acme"),
    ):
        with pytest.raises(SecurityError, match="not accepted"):
            await charger.call(message, suppress=False)

    # Nothing was asked of a charger that is not accepted.
    assert not site.chargers["CP1"]._tasks
    assert "GetConfiguration" not in charger.requests
    assert 1 not in site.pending["CP1"].connectors


async def test_accepting_a_pending_charger_accepts_its_next_boot(start_central_system, connect_cp):
    site, cs, _ = await start_central_system(policy=NewChargerPolicy.PENDING)
    charger = await connect_cp("CP1", cs=cs)
    events = []
    site.subscribe(events.append)

    site.accept_station("CP1")
    answer = await charger.boot()

    assert StationAccepted("CP1") in events
    assert answer.status == "Accepted"
    assert answer.interval == 300
    await charger.wait_request("GetConfiguration")
    await wait_until(site, lambda: site.stations["CP1"].configuration)
    await charger.status(1, "Available")
    assert site.stations["CP1"].connectors[1].status == "available"


async def test_pending_interval_is_the_heartbeat_interval_when_that_is_shorter(
    start_central_system, connect_cp
):
    _, cs, _ = await start_central_system(policy=NewChargerPolicy.PENDING, heartbeat_interval=20)
    charger = await connect_cp("CP1", cs=cs, boot=False)

    assert (await charger.boot()).interval == 20


async def test_pre_accepted_station_is_accepted_under_pending_policy(
    start_central_system, connect_cp
):
    site, cs, _ = await start_central_system(policy=NewChargerPolicy.PENDING)
    events = []
    site.subscribe(events.append)
    site.accept_station("CP1")  # added by the user before it ever connected

    await connect_cp("CP1", cs=cs)

    assert events[:2] == [StationAdded("CP1"), StationAccepted("CP1")]
    assert StationPending("CP1") not in events
    assert site.stations["CP1"].registration is Registration.ACCEPTED


# ---------------------------------------------------------------------- removal
async def test_removing_a_connected_charger_closes_its_connection(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1")
    await charger.status(1, "Charging")
    events = []
    site.subscribe(events.append)

    await site.remove_station("CP1")
    async with asyncio.timeout(FAILSAFE_S):
        await charger.ws.wait_closed()

    assert charger.ws.close_code == 1008
    assert charger.ws.close_reason == "Charger removed from the central system"
    assert StationRemoved("CP1") in events
    station = site.stations["CP1"]
    assert station.registration is Registration.REMOVED
    assert station.boot is None
    assert station.connectors == {}
    assert station.configuration == {}
    await wait_until(site, lambda: not station.connected)
    assert "CP1" not in site.chargers


async def test_removed_charger_is_refused_at_handshake_with_403(
    central_system, connect_cp, connect_raw
):
    site, _, _ = central_system
    await connect_cp("CP1")
    await site.remove_station("CP1")

    response = await refused(connect_raw, "/ocpp/CP1")

    assert response.status_code == 403
    assert b"removed" in response.body


async def test_removed_charger_that_is_accepted_again_can_connect(central_system, connect_cp):
    site, _, _ = central_system
    await connect_cp("CP1")
    await site.remove_station("CP1")

    site.accept_station("CP1")
    charger = await connect_cp("CP1")

    assert site.charger("CP1").station_id == "CP1"
    assert site.stations["CP1"].boot is not None
    assert charger.ws.close_code is None


async def test_removing_a_disconnected_charger_only_marks_it_removed(central_system):
    site, _, _ = central_system
    site.accept_station("CP1")

    await site.remove_station("CP1")

    assert site.stations["CP1"].registration is Registration.REMOVED


# ---------------------------------------------------------------------- basic auth
def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def test_charger_with_password_connects_with_the_right_credentials(
    central_system, connect_cp
):
    site, _, _ = central_system
    site.accept_station("CP1")
    site.set_password("CP1", "s3cret:with colon")

    await connect_cp("CP1", headers=_basic("CP1", "s3cret:with colon"))

    assert site.stations["CP1"].connected


async def test_credentials_in_the_url_are_accepted(central_system, connect_cp):
    site, _, _ = central_system
    site.accept_station("CP1")
    site.set_password("CP1", "s3cret")

    await connect_cp("CP1", user_info="CP1:s3cret")

    assert site.stations["CP1"].connected


async def test_username_is_compared_with_the_decoded_identity(central_system, connect_cp):
    site, _, _ = central_system
    site.accept_station("CP 1")
    site.set_password("CP 1", "pw")

    await connect_cp("CP 1", headers=_basic("CP 1", "pw"))

    assert site.stations["CP 1"].connected


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(None, id="missing"),
        pytest.param(_basic("CP1", "wrong"), id="wrong-password"),
        pytest.param(_basic("CP2", "s3cret"), id="username-is-not-the-identity"),
        pytest.param(_basic("", "s3cret"), id="empty-username"),
        pytest.param({"Authorization": "Bearer s3cret"}, id="not-basic"),
        pytest.param({"Authorization": "Basic !!!not-base64"}, id="bad-base64"),
        pytest.param(
            {"Authorization": "Basic " + base64.b64encode(b"CP1").decode()}, id="no-colon"
        ),
        pytest.param(
            {"Authorization": "Basic " + base64.b64encode(b"CP1:\xff").decode()}, id="not-utf8"
        ),
    ],
)
async def test_wrong_or_missing_password_is_refused_with_401(central_system, connect_raw, headers):
    site, _, _ = central_system
    site.accept_station("CP1")
    site.set_password("CP1", "s3cret")

    response = await refused(connect_raw, "/ocpp/CP1", additional_headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="OCPP", charset="UTF-8"'
    assert not site.stations["CP1"].connected


async def test_refused_impostor_does_not_disturb_the_connected_charger(
    central_system, connect_cp, connect_raw
):
    site, _, _ = central_system
    site.accept_station("CP1")
    site.set_password("CP1", "s3cret")
    charger = await connect_cp("CP1", headers=_basic("CP1", "s3cret"))
    handler = site.charger("CP1")

    response = await refused(connect_raw, "/ocpp/CP1", additional_headers=_basic("CP1", "guess"))

    assert response.status_code == 401
    assert site.charger("CP1") is handler
    assert charger.ws.close_code is None
    assert await handler.clear_cache() == "Accepted"


async def test_auth_scheme_is_case_insensitive(central_system, connect_cp):
    site, _, _ = central_system
    site.accept_station("CP1")
    site.set_password("CP1", "pw")
    token = base64.b64encode(b"CP1:pw").decode()

    await connect_cp("CP1", headers={"Authorization": f"basic {token}"})

    assert site.stations["CP1"].connected


async def test_clearing_the_password_lets_the_charger_in_without_credentials(
    central_system, connect_cp
):
    site, _, _ = central_system
    site.accept_station("CP1")
    site.set_password("CP1", "s3cret")

    site.set_password("CP1", None)
    await connect_cp("CP1")

    assert site.stations["CP1"].password_hash is None
    assert site.stations["CP1"].connected


async def test_password_is_stored_as_a_salted_hash(central_system):
    site, _, _ = central_system
    site.accept_station("CP1")
    site.accept_station("CP2")

    site.set_password("CP1", "s3cret")
    site.set_password("CP2", "s3cret")

    first, second = site.stations["CP1"].password_hash, site.stations["CP2"].password_hash
    assert "s3cret" not in first
    assert first.startswith("pbkdf2_sha256$")
    assert first != second
    assert check_password("s3cret", site.password_hash("CP1"))
    assert not check_password("S3cret", site.password_hash("CP1"))
    assert site.password_hash("unknown") is None


# ---------------------------------------------------------------------- TLS
def _tls_contexts(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1: (server context, client context trusting it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)  # certificate validity only; nothing waits on it
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certfile.write_bytes(cert_pem)
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(certfile, keyfile)
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return server, client


async def test_tls_charger_connects_over_wss_with_basic_auth(
    start_central_system, connect_cp, tmp_path
):
    server_ctx, client_ctx = _tls_contexts(tmp_path)
    site, cs, _ = await start_central_system(ssl_context=server_ctx)
    site.accept_station("CP1")
    site.set_password("CP1", "s3cret")

    charger = await connect_cp("CP1", cs=cs, ssl=client_ctx, headers=_basic("CP1", "s3cret"))

    assert charger.ws.transport.get_extra_info("ssl_object") is not None
    assert site.stations["CP1"].boot.vendor == "Acme"
    assert (await site.charger("CP1").clear_cache()) == "Accepted"


async def test_tls_refuses_a_client_that_does_not_trust_the_certificate(
    start_central_system, tmp_path
):
    server_ctx, _ = _tls_contexts(tmp_path)
    site, cs, _ = await start_central_system(ssl_context=server_ctx)

    with pytest.raises(ssl.SSLCertVerificationError):
        await connect(
            f"wss://127.0.0.1:{cs.port}/ocpp/CP1",
            subprotocols=["ocpp1.6"],
            ssl=ssl.create_default_context(),
        )

    assert site.stations == {}


# ---------------------------------------------------------------------- reconnect
async def test_reconnect_replaces_the_old_connection_cleanly_and_keeps_the_state(
    central_system, connect_cp
):
    site, cs, _ = central_system
    old = await connect_cp("CP1")
    await old.status(1, "Charging")
    started = await old.start_transaction(connector_id=1)
    old_handler = site.charger("CP1")
    old_server_task = cs._server.handlers[old_handler._connection]
    events = []
    site.subscribe(events.append)

    new = await connect_cp("CP1", boot=False)
    async with asyncio.timeout(FAILSAFE_S):
        await old.ws.wait_closed()
        await old_server_task

    assert old.ws.close_code == 1001
    assert old.ws.close_reason == "Replaced by a new connection"
    new_handler = site.charger("CP1")
    assert new_handler is not old_handler
    assert site.chargers == {"CP1": new_handler}
    assert len(cs._server.handlers) == 1  # one websocket handler task left
    assert not old_handler._tasks
    async with asyncio.timeout(FAILSAFE_S):
        await asyncio.gather(*new_handler._tasks)  # the background close of the old one
    assert not new_handler._tasks
    # The state survived: still connected, boot info, connector status, open transaction.
    station = site.stations["CP1"]
    assert station.connected
    assert StationAdded("CP1") not in events
    assert StationUpdated("CP1") in events
    assert station.boot.vendor == "Acme"
    assert station.connectors[1].status == "charging"
    assert station.connectors[1].transaction.transaction_id == started.transaction_id
    # Requests go to the new connection only.
    assert await new_handler.clear_cache() == "Accepted"
    assert len(new.requests["ClearCache"]) == 1
    assert "ClearCache" not in old.requests


async def test_reconnected_charger_can_stop_the_transaction_it_started_before(
    central_system, connect_cp
):
    site, _, _ = central_system
    old = await connect_cp("CP1")
    started = await old.start_transaction(connector_id=1, meter_start=100)

    new = await connect_cp("CP1")
    await new.call(
        call.StopTransaction(
            meter_stop=600,
            timestamp="2026-01-01T11:00:00+00:00",
            transaction_id=started.transaction_id,
        ),
        suppress=False,
    )

    assert site.stations["CP1"].connectors[1].last_transaction.energy_wh() == 500.0


# ---------------------------------------------------------------------- start / stop
async def test_stop_closes_connections_and_port_and_leaves_no_task(central_system, connect_cp):
    site, cs, _ = central_system
    tasks_before = asyncio.all_tasks()
    first = await connect_cp("CP1")
    second = await connect_cp("CP2")
    second.ignore.add("GetConfiguration")
    await second.boot()  # leaves a configuration read in flight
    await second.wait_request("GetConfiguration", count=2)
    port = cs.port

    await cs.stop()

    # Right away, only the chargers' own receive loops may still be winding down.
    assert asyncio.all_tasks() - tasks_before - {first.task, second.task} == set()
    assert site.chargers == {}
    assert not any(station.connected for station in site.stations.values())
    async with asyncio.timeout(FAILSAFE_S):
        for charger in (first, second):
            await charger.ws.wait_closed()
            await asyncio.gather(charger.task, return_exceptions=True)
    assert first.ws.close_code == 1001
    assert asyncio.all_tasks() - tasks_before == set()
    with pytest.raises(OSError):  # noqa: PT011  connection refused: nothing listens any more
        await connect(f"ws://127.0.0.1:{port}/ocpp/CP1", subprotocols=["ocpp1.6"])


async def test_stop_twice_and_stop_before_start_are_harmless(central_system):
    site, cs, _ = central_system
    await cs.stop()
    await cs.stop()

    never_started = CentralSystem(site, host="127.0.0.1", port=4242)
    assert never_started.port == 4242
    await never_started.stop()


async def test_start_on_a_taken_port_raises_oserror(central_system):
    site, cs, _ = central_system
    other = CentralSystem(site, host="127.0.0.1", port=cs.port)

    with pytest.raises(OSError):  # noqa: PT011
        await other.start()


async def test_charger_disconnecting_is_marked_disconnected(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1")
    assert site.stations["CP1"].connected

    await charger.ws.close()
    await wait_until(site, lambda: not site.stations["CP1"].connected)

    assert "CP1" not in site.chargers


async def test_keepalive_pings_can_be_enabled(start_central_system, connect_cp):
    site, cs, _ = await start_central_system(ping_interval=30)
    charger = await connect_cp("CP1", cs=cs)

    assert charger.ws.close_code is None
    assert site.stations["CP1"].connected
