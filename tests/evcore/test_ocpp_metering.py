"""parse_meter_values and parse_timestamp on inputs a schema-valid frame cannot carry."""

from __future__ import annotations

from datetime import UTC, datetime

from custom_components.ev_charging_expert.evcore.clock import parse_timestamp
from custom_components.ev_charging_expert.evcore.ocpp.v16.metering import parse_meter_values

RECEIVED = datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_missing_timestamp_is_the_time_of_receipt():
    [m] = parse_meter_values([{"sampled_value": [{"value": "5"}]}], RECEIVED)

    assert m.timestamp == RECEIVED


def test_samples_without_a_usable_value_are_skipped():
    samples = [{"measurand": "Voltage"}, {"value": None}, {"value": "1e3"}]

    measurements = parse_meter_values([{"sampled_value": samples}], RECEIVED)

    assert [m.value for m in measurements] == [1000.0]


def test_entry_without_sampled_values_yields_nothing():
    assert parse_meter_values([{"timestamp": "2026-01-01T00:00:00Z"}], RECEIVED) == []


def test_unknown_unit_is_kept_as_is():
    [m] = parse_meter_values(
        [{"sampled_value": [{"value": "3", "measurand": "Voltage", "unit": "kV"}]}], RECEIVED
    )

    assert (m.value, m.unit) == (3.0, "kV")


def test_naive_timestamp_is_taken_as_utc():
    assert parse_timestamp("2026-05-01T10:00:00", RECEIVED) == datetime(2026, 5, 1, 10, tzinfo=UTC)


def test_unreadable_or_missing_timestamp_is_the_default():
    assert parse_timestamp("yesterday", RECEIVED) is RECEIVED
    assert parse_timestamp(None, RECEIVED) is RECEIVED
    assert parse_timestamp("", RECEIVED) is RECEIVED
