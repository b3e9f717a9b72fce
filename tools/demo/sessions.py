"""The demo's charge data records: what the session store recorded of the simulated fleet.

Every session of the simulated chargers is recorded by the integration itself; `--check`
lists them through the `list_sessions` service and exports them with `export_sessions`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tools.demo.rest import HaApi

_SERVICE = "/api/services/ev_charging_expert/{}?return_response"


async def check_sessions(api: HaApi) -> bool:
    """Print the sessions recorded so far and export them; True when it worked."""
    answer: Any = await api.request("POST", _SERVICE.format("list_sessions"), json_body={})
    sessions = (answer or {}).get("service_response", {}).get("sessions", [])
    states: dict[str, int] = {}
    for session in sessions:
        states[session["status"]] = states.get(session["status"], 0) + 1
    print(f"demo: sessions recorded (first page): {len(sessions)} {states}")
    for session in sessions[:5]:
        print(
            f"demo:   {session['station_id']}#{session['connector_id']} tx "
            f"{session['transaction_id']} {session['status']} "
            f"{(session['energy_wh'] or 0) / 1000:.3f} kWh"
        )
    export: Any = await api.request("POST", _SERVICE.format("export_sessions"), json_body={})
    response = (export or {}).get("service_response", {})
    print(f"demo: sessions exported: {response.get('rows')} rows -> {response.get('path')}")
    return bool(sessions) and response.get("rows") is not None
