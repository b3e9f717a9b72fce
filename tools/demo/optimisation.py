"""Demo: switch consumption optimisation on (`--optimise`), through the site options flow.

The demo fleet's EVs are mostly capped onboard at 16 A on 32 A connectors: with the option on,
the current they leave unused goes to the others a couple of minutes after they start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tools.demo.ha_process import DemoError

if TYPE_CHECKING:
    from tools.demo.rest import HaApi

OPTION = "consumption_optimisation"


async def enable_optimisation(api: HaApi, entry_id: str) -> None:
    """Run the options flow with the option on; the other options keep their values."""
    form = await api.request(
        "POST", "/api/config/config_entries/options/flow", json_body={"handler": entry_id}
    )
    if form.get("type") != "form":
        raise DemoError(f"unexpected options flow step: {form}")
    result = await api.request(
        "POST",
        f"/api/config/config_entries/options/flow/{form['flow_id']}",
        json_body={OPTION: True},
    )
    if result.get("type") != "create_entry":
        raise DemoError(f"the options flow refused the option: {result.get('errors')}")
    print("demo: consumption optimisation is on")
