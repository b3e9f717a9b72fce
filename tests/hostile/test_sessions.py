"""Sessions a broken charger muddles: a second start on a busy connector, a wrong meter start.

Reproduced: a second StartTransaction on a busy connector overwrote the running session without
a `session_ended` event; a charger that sends `meterStart = 0` while its register samples are
lifetime totals made session energies wrong and the energy sensors go down.
"""

from __future__ import annotations

from ocpp.exceptions import PropertyConstraintViolationError
from ocpp.v16 import call
import pytest

from custom_components.ev_charging_expert.evcore.events import SessionEnded, SessionStarted
from custom_components.ev_charging_expert.evcore.site import REASON_SUPERSEDED

LIFETIME = 5_000_000  # Wh already on the charger's register


def _register(wh: float, timestamp: str) -> dict:
    return {
        "timestamp": timestamp,
        "sampledValue": [{"value": f"{wh:g}", "measurand": "Energy.Active.Import.Register"}],
    }


async def _send_register(charger, wh: float, timestamp: str, connector_id: int = 1) -> None:
    await charger.call(
        call.MeterValues(connector_id=connector_id, meter_value=[_register(wh, timestamp)]),
        suppress=False,
    )


async def _stop(charger, transaction_id: int, meter_stop: int, timestamp: str) -> None:
    await charger.call(
        call.StopTransaction(
            meter_stop=meter_stop, timestamp=timestamp, transaction_id=transaction_id
        ),
        suppress=False,
    )


# ---------------------------------------------------------------------- a second start
async def test_a_resent_start_gets_the_same_session(central_system, connect_cp):
    """A charger that lost our answer resends the same StartTransaction (OCPP 1.6, 4.8)."""
    site, _, _ = central_system
    charger = await connect_cp("CP1")
    events = []
    site.subscribe(events.append)

    first = await charger.start_transaction(connector_id=1, id_tag="A", meter_start=1000)
    again = await charger.start_transaction(connector_id=1, id_tag="A", meter_start=1000)

    assert again.transaction_id == first.transaction_id
    assert again.id_tag_info["status"] == "Accepted"
    assert [type(e) for e in events if isinstance(e, (SessionStarted, SessionEnded))] == [
        SessionStarted
    ]


async def test_a_new_start_on_a_busy_connector_ends_the_previous_session(
    central_system, connect_cp
):
    """The charger ended the first session and we missed its StopTransaction."""
    site, _, _ = central_system
    charger = await connect_cp("CP1")
    first = await charger.start_transaction(
        connector_id=1, id_tag="A", meter_start=1000, timestamp="2026-01-01T10:00:00Z"
    )
    await _send_register(charger, 4000, "2026-01-01T10:30:00Z")
    events = []
    site.subscribe(events.append)

    second = await charger.start_transaction(
        connector_id=1, id_tag="B", meter_start=9000, timestamp="2026-01-01T12:00:00Z"
    )

    assert second.transaction_id != first.transaction_id
    ended = [e.transaction for e in events if isinstance(e, SessionEnded)]
    assert [t.transaction_id for t in ended] == [first.transaction_id]
    old = ended[0]
    assert old.stop_reason == REASON_SUPERSEDED
    assert old.meter_stop_wh == 9000.0
    assert old.energy_wh() == 8000.0
    assert str(old.stopped_at) == "2026-01-01 12:00:00+00:00"
    connector = site.stations["CP1"].connectors[1]
    assert connector.transaction.transaction_id == second.transaction_id
    assert connector.last_transaction is old
    assert events.index(next(e for e in events if isinstance(e, SessionEnded))) < events.index(
        next(e for e in events if isinstance(e, SessionStarted))
    )


async def test_the_late_stop_of_a_superseded_session_is_acknowledged(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1")
    first = await charger.start_transaction(connector_id=1, id_tag="A", meter_start=1000)
    await charger.start_transaction(
        connector_id=1, id_tag="B", meter_start=2000, timestamp="2026-01-01T12:00:00Z"
    )
    events = []
    site.subscribe(events.append)

    await _stop(charger, first.transaction_id, 2000, "2026-01-01T11:00:00Z")

    assert events == []
    assert site.stations["CP1"].connectors[1].transaction is not None
    assert site.stations["CP1"].rejected == {}


# ---------------------------------------------------------------------- meter start vs register
async def test_meter_start_zero_with_a_lifetime_register_starts_at_the_first_sample(
    central_system, connect_cp
):
    site, _, _ = central_system
    charger = await connect_cp("CP1")
    started = await charger.start_transaction(
        connector_id=1, meter_start=0, timestamp="2026-01-01T10:00:00Z"
    )
    connector = site.stations["CP1"].connectors[1]
    seen = []

    for minute, wh in ((1, LIFETIME + 100), (2, LIFETIME + 300), (3, LIFETIME + 250)):
        await _send_register(charger, wh, f"2026-01-01T10:0{minute}:00Z")
        seen.append(connector.session_energy_wh)

    assert seen == [0.0, 200.0, 200.0]  # from the first sample, and never down
    assert connector.transaction.meter_start_wh == LIFETIME + 100
    assert connector.transaction.charger_meter_start_wh == 0.0
    assert site.stations["CP1"].rejected == {
        "meterStart": 1,
        "Energy.Active.Import.Register": 1,
    }
    await _stop(charger, started.transaction_id, LIFETIME + 900, "2026-01-01T10:10:00Z")
    assert connector.last_transaction.energy_wh() == 800.0


@pytest.mark.parametrize(
    ("meter_stop", "energy"),
    [
        (LIFETIME + 900, 800.0),  # in the register's scale
        (1000, 1000.0),  # in the scale of the meter start the charger sent
        (0, 300.0),  # nonsense: what the samples showed
    ],
)
async def test_the_end_of_a_corrected_session_reads_its_meter_stop_in_either_scale(
    central_system, connect_cp, meter_stop, energy
):
    site, _, _ = central_system
    charger = await connect_cp("CP1")
    started = await charger.start_transaction(
        connector_id=1, meter_start=0, timestamp="2026-01-01T10:00:00Z"
    )
    await _send_register(charger, LIFETIME + 100, "2026-01-01T10:01:00Z")
    await _send_register(charger, LIFETIME + 400, "2026-01-01T10:05:00Z")

    await _stop(charger, started.transaction_id, meter_stop, "2026-01-01T10:10:00Z")

    assert site.stations["CP1"].connectors[1].last_transaction.energy_wh() == energy


async def test_a_consistent_meter_start_is_kept(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1")
    await charger.start_transaction(
        connector_id=1, meter_start=LIFETIME, timestamp="2026-01-01T10:00:00Z"
    )

    await _send_register(charger, LIFETIME + 2500, "2026-01-01T10:05:00Z")  # 30 kW

    tx = site.stations["CP1"].connectors[1].transaction
    assert (tx.meter_start_wh, tx.charger_meter_start_wh) == (LIFETIME, None)
    assert tx.energy_wh() == 2500.0
    assert site.stations["CP1"].rejected == {}


async def test_a_register_that_restarts_per_session_is_caught_too(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1")
    await charger.start_transaction(
        connector_id=1, meter_start=LIFETIME, timestamp="2026-01-01T10:00:00Z"
    )

    await _send_register(charger, 40, "2026-01-01T10:01:00Z")
    await _send_register(charger, 540, "2026-01-01T10:02:00Z")

    assert site.stations["CP1"].connectors[1].session_energy_wh == 500.0


async def test_an_absurd_meter_stop_keeps_the_energy_the_samples_showed(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1")
    started = await charger.start_transaction(
        connector_id=1, meter_start=1000, timestamp="2026-01-01T10:00:00Z"
    )
    await _send_register(charger, 3000, "2026-01-01T10:05:00Z")

    await _stop(charger, started.transaction_id, 10**13, "2026-01-01T10:10:00Z")

    tx = site.stations["CP1"].connectors[1].last_transaction
    assert tx.energy_wh() == 2000.0
    assert tx.meter_stop_wh is None
    assert site.stations["CP1"].rejected == {"meterStop": 1}


async def test_an_absurd_meter_start_is_refused(central_system, connect_cp):
    site, _, _ = central_system
    charger = await connect_cp("CP1")

    with pytest.raises(PropertyConstraintViolationError):
        await charger.start_transaction(connector_id=1, meter_start=10**13)

    assert site.stations["CP1"].connectors == {}
