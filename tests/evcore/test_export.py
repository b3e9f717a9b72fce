"""State export (transport-free): documents, schemas, change detection and coalescing.

A real Controller on a ManualClock; the site is fed through its own commands (what the OCPP
handler calls), the exporter publishes into a list.
"""

from __future__ import annotations

import asyncio
from itertools import pairwise
import json
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
import pytest

from custom_components.ev_charging_expert.evcore.clock import ManualClock
from custom_components.ev_charging_expert.evcore.config import (
    ConnectorConfig,
    StationConfig,
    ZoneConfig,
)
from custom_components.ev_charging_expert.evcore.controller import Controller
from custom_components.ev_charging_expert.evcore.export.documents import SCHEMAS
from custom_components.ev_charging_expert.evcore.export.exporter import (
    ExportSettings,
    StateExporter,
    Topics,
)
from custom_components.ev_charging_expert.evcore.model import (
    BootInfo,
    ConnectorStatus,
    Measurement,
    NewChargerPolicy,
)
from custom_components.ev_charging_expert.evcore.site import MemoryStore, SiteSettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class Broker:
    """Retained topics as a broker keeps them, and every message in order."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []
        self.retained: dict[str, str] = {}

    def __call__(self, topic: str, payload: str, *, retain: bool) -> None:
        self.messages.append((topic, payload))
        if retain and payload:
            self.retained[topic] = payload
        elif retain:
            self.retained.pop(topic, None)

    def count(self, topic: str) -> int:
        return sum(1 for t, _ in self.messages if t == topic)

    def doc(self, topic: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.retained[topic])
        return data


class Site:
    def __init__(self, controller: Controller, clock: ManualClock) -> None:
        self.controller = controller
        self.clock = clock
        self.broker = Broker()

    def exporter(self, interval: float = 1.0) -> StateExporter:
        exporter = StateExporter(
            self.controller, self.broker, ExportSettings(min_interval=interval)
        )
        exporter.start()
        self.clock.advance(0)
        return exporter

    def add_station(self, station_id: str, zone_id: str | None = "z1") -> None:
        site = self.controller.site
        site.station_booted(station_id, BootInfo("Vendor", "Model"))
        site.configure_station(
            station_id,
            StationConfig(zone_id=zone_id, connectors={1: ConnectorConfig(rating=32.0)}),
        )
        self.status(station_id, ConnectorStatus.AVAILABLE)

    def status(self, station_id: str, status: ConnectorStatus) -> None:
        self.controller.site.connector_status(
            station_id,
            1,
            status=status,
            error_code="NoError",
            info=None,
            vendor_id=None,
            vendor_error_code=None,
            timestamp=self.clock.now(),
        )

    def current(self, station_id: str, amps: float) -> None:
        now = self.clock.now()
        samples = [
            Measurement("Current.Import", amps, "A", phase, "Sample.Periodic", "Outlet", now)
            for phase in ("L1", "L2", "L3")
        ]
        self.controller.site.measurements(station_id, 1, samples, None)


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    clock = ManualClock()
    controller = Controller(
        clock=clock,
        store=MemoryStore(),
        settings=SiteSettings(new_charger_policy=NewChargerPolicy.ACCEPT),
    )
    await controller.restore()
    controller.set_zones({"z1": ZoneConfig("z1", "Garage", 63.0)})
    yield Site(controller, clock)
    await controller.stop()


async def test_every_document_matches_its_published_schema(site: Site) -> None:
    site.add_station("S1")
    site.status("S1", ConnectorStatus.CHARGING)
    site.current("S1", 16.0)
    site.controller.load.request_run()
    await asyncio.sleep(0)
    site.exporter()
    site.clock.advance(1.0)
    kinds = {"site": 0, "zone": 0, "station": 0, "connector": 0}
    for topic, payload in site.broker.retained.items():
        kind = topic.split("/")[1]
        if kind == "availability":
            continue
        Draft202012Validator(SCHEMAS[kind]).validate(json.loads(payload))
        kinds[kind] += 1
    assert kinds == {"site": 1, "zone": 1, "station": 1, "connector": 1}
    connector = site.broker.doc("ev_charging_expert/connector/S1/1")
    assert connector["current_a"] == [16.0, 16.0, 16.0]
    assert connector["status"] == "charging"
    assert site.broker.doc("ev_charging_expert/zone/z1")["max_current_a"] == 63.0


async def test_meter_values_bursts_cost_one_message_per_object_per_interval(site: Site) -> None:
    site.add_station("S1")
    site.exporter(interval=1.0)
    topic = "ev_charging_expert/connector/S1/1"
    first = site.broker.count(topic)
    for step in range(50):  # 50 MeterValues in 10 s, each with 3 fields
        site.current("S1", 6.0 + step * 0.1)
        site.clock.advance(0.2)
    assert site.broker.count(topic) - first <= 11  # at most one per second
    site.clock.advance(1.0)
    assert site.broker.doc(topic)["current_a"] == [10.9, 10.9, 10.9]  # the last value wins


async def test_unchanged_state_is_not_published_again(site: Site) -> None:
    site.add_station("S1")
    exporter = site.exporter()
    before = len(site.broker.messages)
    site.current("S1", 0.0)
    site.current("S1", 0.0)
    site.clock.advance(5.0)
    after = len(site.broker.messages)
    site.current("S1", 0.0)  # same values again
    site.clock.advance(5.0)
    assert len(site.broker.messages) == after
    assert after - before <= 2  # the connector and the site, once
    assert exporter.skipped >= 1


async def test_removed_station_loses_its_retained_topics(site: Site) -> None:
    site.add_station("S1")
    site.exporter()
    assert "ev_charging_expert/station/S1" in site.broker.retained
    await site.controller.site.remove_station("S1")
    site.clock.advance(1.0)
    assert "ev_charging_expert/station/S1" not in site.broker.retained
    assert "ev_charging_expert/connector/S1/1" not in site.broker.retained


async def test_pending_chargers_are_not_exported(site: Site) -> None:
    site.controller.site.settings.new_charger_policy = NewChargerPolicy.PENDING
    site.exporter()
    site.controller.site.station_booted("NEW", BootInfo("Vendor", "Model"))
    site.clock.advance(2.0)
    assert not [t for t in site.broker.retained if "NEW" in t]


async def test_availability_is_online_while_running_then_offline(site: Site) -> None:
    exporter = site.exporter()
    assert site.broker.retained["ev_charging_expert/availability"] == "online"
    exporter.stop()
    assert site.broker.retained["ev_charging_expert/availability"] == "offline"
    count = len(site.broker.messages)
    site.add_station("S1")
    site.clock.advance(5.0)
    assert len(site.broker.messages) == count  # stopped: nothing more


async def test_a_prefix_given_up_is_cleared_from_the_broker(site: Site) -> None:
    site.add_station("S1")
    exporter = site.exporter()
    assert len(site.broker.retained) == 5  # availability, site, zone, station, connector
    exporter.stop(clear=True)
    assert site.broker.retained == {}


async def test_republish_sends_everything_again(site: Site) -> None:
    site.add_station("S1")
    exporter = site.exporter()
    site.clock.advance(2.0)
    site.broker.retained.clear()  # a broker restarted without persistence
    exporter.republish()
    site.clock.advance(2.0)
    assert {
        "ev_charging_expert/site",
        "ev_charging_expert/zone/z1",
        "ev_charging_expert/station/S1",
        "ev_charging_expert/connector/S1/1",
    } <= set(site.broker.retained)


async def test_free_text_identities_make_one_topic_level_without_wildcards(site: Site) -> None:
    site.add_station("a/b+c#d")
    site.exporter()
    assert "ev_charging_expert/station/a%2Fb%2Bc%23d" in site.broker.retained
    topics = Topics("ev_charging_expert")
    assert topics.command_name("ev_charging_expert/command/heartbeat") == "heartbeat"
    assert topics.command_name("ev_charging_expert/result") is None


async def test_no_object_is_published_twice_within_its_interval(site: Site) -> None:
    for sid in ("S1", "S2"):
        site.add_station(sid)
    sent: dict[str, list[float]] = {}

    def publish(topic: str, payload: str, *, retain: bool) -> None:
        sent.setdefault(topic, []).append(site.clock.monotonic())

    StateExporter(site.controller, publish, ExportSettings(min_interval=2.0)).start()
    for step in range(200):  # MeterValues and status changes every 0.1 s for 20 s
        site.current("S1" if step % 2 else "S2", 6.0 + step % 7)
        if step % 13 == 0:
            site.status(
                "S1", ConnectorStatus.SUSPENDED_EV if step % 2 else ConnectorStatus.CHARGING
            )
        site.clock.advance(0.1)
    site.clock.advance(2.0)
    for topic, times in sent.items():
        gaps = [b - a for a, b in pairwise(times)]
        assert min(gaps, default=2.0) >= 2.0 - 1e-9, topic
    assert len(sent["ev_charging_expert/connector/S1/1"]) >= 9  # and it did keep up
