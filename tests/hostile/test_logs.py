"""A charger cannot forge log lines: every value it sends is logged quoted (repr).

Reproduced: values with a newline (a frame, an answer's unique id, DataTransfer fields) were
logged with %s, so a charger could write lines that look like the integration's own.
"""

from __future__ import annotations

import json
import logging

from ocpp.v16 import call
from ocpp_peer import recv_json

FORGED = "\nERROR ev_charging_expert: forged"


async def test_values_with_a_newline_cannot_forge_a_log_line(
    central_system, connect_cp, connect_raw, caplog
):
    site, _, _ = central_system
    caplog.set_level(logging.DEBUG, logger="custom_components.ev_charging_expert")
    charger = await connect_cp("CP1")
    site.accept_station("RAW")  # by the user: an unknown identity must boot first
    raw = await connect_raw("/ocpp/RAW")

    await charger.call(
        call.DataTransfer(vendor_id="v" + FORGED, message_id="m" + FORGED, data="d" + FORGED),
        suppress=False,
    )
    await charger.status(1, "Faulted", info="i" + FORGED)
    await raw.send("not json" + FORGED)
    await recv_json(raw)
    await raw.send(json.dumps([3, "id" + FORGED, {}]))
    await raw.send(
        json.dumps(
            [
                2,
                "m1",
                "MeterValues",
                {
                    "connectorId": 1,
                    "meterValue": [
                        {
                            "timestamp": "2026-01-01T00:00:00Z",
                            "sampledValue": [
                                {"value": "NaN" + FORGED, "measurand": "Current.Import"},
                                {"value": "NaN", "measurand": "Voltage", "unit": "V"},
                            ],
                        }
                    ],
                },
            ]
        )
    )
    await recv_json(raw)

    messages = [r.getMessage() for r in caplog.records]
    assert any("forged" in m for m in messages)  # the values were logged...
    assert not [m for m in messages if FORGED in m]  # ...but never raw
    assert site.stations["RAW"].rejected == {"frame": 1, "answer": 1, "Voltage": 1}
