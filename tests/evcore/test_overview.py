"""The site at a glance: station state from its connectors, zone headroom, offline reserves."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from custom_components.ev_charging_expert.evcore.config import ZoneConfig
from custom_components.ev_charging_expert.evcore.model import (
    ConnectorStatus as S,
    StationState,
)
from custom_components.ev_charging_expert.evcore.overview import StationStatus, station_status

if TYPE_CHECKING:
    from conftest_load import LoadEnv

pytest_plugins = ("conftest_load",)  # the `env` fixture

SITE = (
    ZoneConfig("A", "Building", 63.0),
    ZoneConfig("A1", "Car park", 32.0, parent_id="A"),
)


def _station(whole: S | None, *connectors: S, connected: bool = True) -> StationState:
    station = StationState("CP", connected=connected)
    if whole is not None:
        station.connector(0).status = whole
    for cid, status in enumerate(connectors, start=1):
        station.connector(cid).status = status
    return station


@pytest.mark.parametrize(
    ("whole", "connectors", "expected"),
    [
        # Connector 0 says "Available" while connector 2 charges: the station charges.
        (S.AVAILABLE, (S.AVAILABLE, S.CHARGING), StationStatus.CHARGING),
        (None, (S.SUSPENDED_EV, S.AVAILABLE), StationStatus.SUSPENDED),
        (S.AVAILABLE, (S.PREPARING, S.AVAILABLE), StationStatus.OCCUPIED),
        (S.AVAILABLE, (S.FINISHING,), StationStatus.OCCUPIED),
        (S.AVAILABLE, (S.RESERVED, S.AVAILABLE), StationStatus.RESERVED),
        (S.AVAILABLE, (S.AVAILABLE, S.AVAILABLE), StationStatus.AVAILABLE),
        (S.AVAILABLE, (S.FAULTED, S.CHARGING), StationStatus.CHARGING),
        (S.AVAILABLE, (S.FAULTED, S.FAULTED), StationStatus.FAULTED),
        (S.FAULTED, (S.CHARGING,), StationStatus.FAULTED),
        (S.UNAVAILABLE, (S.AVAILABLE,), StationStatus.UNAVAILABLE),
        (S.AVAILABLE, (S.UNAVAILABLE, S.UNAVAILABLE), StationStatus.UNAVAILABLE),
        (S.AVAILABLE, (), StationStatus.AVAILABLE),
        (None, (), None),
    ],
)
def test_station_status_is_derived_from_its_connectors(
    whole: S | None, connectors: tuple[S, ...], expected: StationStatus | None
) -> None:
    assert station_status(_station(whole, *connectors)) is expected


def test_a_disconnected_station_is_offline_whatever_it_last_said() -> None:
    assert station_status(_station(S.AVAILABLE, S.CHARGING, connected=False)) is (
        StationStatus.OFFLINE
    )


async def test_zone_headroom_is_the_tightest_zone_on_the_path(env: LoadEnv) -> None:
    env.set_zones(*SITE)
    await env.add_charger("S1")
    env.place("S1", "A1")
    await env.plug("S1", phases=3)
    await env.converge()
    views = env.controller.zone_views()
    # S1 takes 32 A: the car park is full, the building has 31 A left on each phase.
    assert views["A"].headroom == pytest.approx((31.0, 31.0, 31.0))
    assert views["A1"].headroom == pytest.approx((0.0, 0.0, 0.0))
    site = env.controller.site_view()
    assert site.headroom == pytest.approx((31.0, 31.0, 31.0))
    assert (site.evs_charging, site.evs_suspended) == (1, 0)
    assert (site.stations_online, site.stations_offline, site.offline_reserving) == (1, 0, 0)


async def test_an_offline_station_that_holds_current_is_named_in_its_zones(env: LoadEnv) -> None:
    env.set_zones(*SITE)
    s1 = await env.add_charger("S1")
    await env.add_charger("S2")
    env.place("S1", "A1")
    env.place("S2", "A1")
    await env.plug("S1", phases=3)
    await env.converge()
    held = env.lm.leases[next(k for k in env.lm.leases if k.station_id == "S1")].held
    assert held is not None
    assert held > 0
    s1.reconnect_delay = (3600.0, 3600.0)
    await env.stop_charger("S1")
    await env.advance(5)

    views = env.controller.zone_views()
    for zone_id in ("A", "A1"):
        (reserve,) = views[zone_id].offline_reserve
        assert reserve.station_id == "S1"
        assert reserve.amps == pytest.approx(held)
        assert reserve.since is not None
    site = env.controller.site_view()
    assert (site.stations_online, site.stations_offline, site.offline_reserving) == (1, 1, 1)
    assert site.to_dict()["stations_offline"] == 1
