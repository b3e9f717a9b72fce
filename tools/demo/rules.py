"""The demo's operating rules (issue 11): a digital input and a time-of-use period.

- "Grid relay": a digital input driven by the `input_boolean.demo_grid_relay` helper; turn it on
  in HA (Settings > Devices & services > Helpers, or the entity's toggle) and every zone is held
  to 30 % of its max, with "Limited by: Digital input" on each zone.
- "Peak": a time-of-use period at 60 %, the first half of every hour (HA's time zone), in the
  zone "Demo parking" only: its "Limited by" sensor says "Time-of-use" half of the time.

Added once, through the same subentry flows a user goes through; what you change stays.
`--check` turns the relay on, reads the zone's reason, and turns it off again.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from tools.demo.ha_process import DemoError

if TYPE_CHECKING:
    from tools.demo.rest import HaApi

RELAY = "input_boolean.demo_grid_relay"
INPUT_NAME = "Grid relay"
INPUT_PERCENT = 30
PERIOD_NAME = "Peak"
PERIOD_PERCENT = 60
PERIOD_SLOTS = "; ".join(f"Daily {h:02d}:00-{h:02d}:30" for h in range(24))
PERIOD_ZONE = "Demo parking"


async def _ensure_relay(api: HaApi) -> bool:
    """The input_boolean helper; True when it is a real helper (else a bare state)."""
    try:
        await api.request("GET", f"/api/states/{RELAY}")
    except DemoError:
        pass
    else:
        return True
    try:
        await api.ws_command({"type": "input_boolean/create", "name": "Demo grid relay"})
    except DemoError:
        # An older demo_config without `input_boolean:`: a state the input can follow.
        await api.request("POST", f"/api/states/{RELAY}", json_body={"state": "off"})
        return False
    return True


async def _add(api: HaApi, entry_id: str, subentry_type: str, user_input: dict[str, Any]) -> None:
    form = await api.request(
        "POST",
        "/api/config/config_entries/subentries/flow",
        json_body={"handler": [entry_id, subentry_type]},
    )
    result = await api.request(
        "POST",
        f"/api/config/config_entries/subentries/flow/{form['flow_id']}",
        json_body=user_input,
    )
    if result.get("type") != "create_entry":
        raise DemoError(
            f"the {subentry_type} flow refused: {result.get('errors')} "
            f"{result.get('description_placeholders') or ''}"
        )


async def setup_rules(api: HaApi, entry_id: str) -> None:
    """Add the relay helper, the digital input and the period (once)."""
    subentries = await api.subentries(entry_id)
    types = {s["subentry_type"] for s in subentries}
    zones = {s["title"]: s["subentry_id"] for s in subentries if s["subentry_type"] == "zone"}
    helper = await _ensure_relay(api)
    if "digital_input" not in types:
        await _add(
            api,
            entry_id,
            "digital_input",
            {"name": INPUT_NAME, "entity_id": RELAY, "percent": INPUT_PERCENT, "enabled": True},
        )
        kind = "an input_boolean helper" if helper else "a bare state"
        print(
            f"demo: added the digital input {INPUT_NAME!r} ({RELAY}, {kind}): on = every "
            f"zone at {INPUT_PERCENT} % of its max"
        )
    if "tou_period" not in types:
        excluded = [z for title, z in zones.items() if title != PERIOD_ZONE]
        await _add(
            api,
            entry_id,
            "tou_period",
            {
                "name": PERIOD_NAME,
                "percent": PERIOD_PERCENT,
                "slots": PERIOD_SLOTS,
                "excluded_zones": excluded,
            },
        )
        print(
            f"demo: added the time-of-use period {PERIOD_NAME!r} ({PERIOD_PERCENT} %, the first "
            f"half of every hour, zone {PERIOD_ZONE!r})"
        )


async def _reason(api: HaApi, entry_id: str) -> str | None:
    zones = {
        s["title"]: s["subentry_id"]
        for s in await api.subentries(entry_id)
        if s["subentry_type"] == "zone"
    }
    zone_id = zones.get(PERIOD_ZONE)
    if zone_id is None:
        return None
    unique = f"zone_{zone_id}_limited_by"
    entity_id = (await api.entity_ids({unique})).get(unique)
    if entity_id is None:
        return None
    state = await api.state(entity_id)
    rule = state["attributes"].get("rule")
    return f"{state['state']} ({rule})"


async def _relay(api: HaApi, *, on: bool) -> None:
    service = "turn_on" if on else "turn_off"
    try:
        await api.request(
            "POST", f"/api/services/input_boolean/{service}", json_body={"entity_id": RELAY}
        )
    except DemoError:
        await api.request(
            "POST", f"/api/states/{RELAY}", json_body={"state": "on" if on else "off"}
        )


async def check_rules(api: HaApi, entry_id: str) -> bool:
    """The relay cuts the demo zone, and its "Limited by" sensor says so."""
    try:
        period = await api.state("sensor.ev_charging_expert_time_of_use_period")
        print(f"demo: rules: time-of-use period now: {period['state']}")
    except DemoError:
        pass
    before = await _reason(api, entry_id)
    await _relay(api, on=True)
    await asyncio.sleep(5)
    during = await _reason(api, entry_id)
    await _relay(api, on=False)
    await asyncio.sleep(5)
    after = await _reason(api, entry_id)
    ok = during is not None and during.startswith("input")
    print(
        f"demo: check {'passed' if ok else 'FAILED'}: {PERIOD_ZONE!r} limited by {before} -> "
        f"relay on: {during} -> relay off: {after}"
    )
    return ok
