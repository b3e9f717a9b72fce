"""docs/mqtt.md shows the JSON Schemas the export and the commands really use."""

from __future__ import annotations

from tools import mqtt_docs


def test_the_documented_schemas_are_the_ones_in_use() -> None:
    assert mqtt_docs.main(["--check"]) == 0
