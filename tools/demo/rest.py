"""The few Home Assistant REST and WebSocket API calls the demo needs (`HaApi`).

Onboarding, login (and renewal of an expired access token), the config flow, the subentry
flows (zones, a Modbus meter), states, the entity registry.
"""

from __future__ import annotations

import asyncio
import contextlib
from http import HTTPStatus
import json
from typing import Any

import aiohttp

from tools.demo.ha_process import DOMAIN, HA_URL, DemoError

CLIENT_ID = f"{HA_URL}/"
USERNAME = "demo"
PASSWORD = "demo1234"  # noqa: S105  # a local demo login, printed on purpose
ONBOARDING_STEPS = ("user", "core_config", "analytics", "integration")


class HaApi:
    """The few REST calls the demo needs."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.token: str | None = None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def request(
        self, method: str, path: str, *, json_body: Any = None, data: Any = None
    ) -> Any:
        """Send a request; returns the decoded JSON; raises DemoError on an HTTP error.

        An expired access token (they last 30 minutes) is renewed by logging in again.
        """
        for attempt in (1, 2):
            async with self.session.request(
                method, f"{HA_URL}{path}", json=json_body, data=data, headers=self._headers()
            ) as response:
                text = await response.text()
                status = response.status
            if status == HTTPStatus.UNAUTHORIZED and self.token and attempt == 1:
                await self.login()
                continue
            if status >= HTTPStatus.BAD_REQUEST:
                raise DemoError(f"{method} {path}: HTTP {status}: {text[:500]}")
            return json.loads(text) if text else None
        raise DemoError(f"{method} {path}: unauthorized")

    async def wait_up(self, timeout: float = 600.0) -> list[dict[str, Any]]:
        """Wait for the HTTP server; returns the onboarding status (all done once onboarded:
        the onboarding API is gone then)."""
        async with asyncio.timeout(timeout):
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with self.session.get(f"{HA_URL}/api/onboarding") as response:
                        if response.status == HTTPStatus.OK:
                            return await response.json()  # type: ignore[no-any-return]
                        if response.status == HTTPStatus.NOT_FOUND:
                            return [{"step": step, "done": True} for step in ONBOARDING_STEPS]
                await asyncio.sleep(1)

    async def _token_from_code(self, code: str) -> None:
        tokens = await self.request(
            "POST",
            "/auth/token",
            data={"grant_type": "authorization_code", "code": code, "client_id": CLIENT_ID},
        )
        self.token = tokens["access_token"]

    async def login(self) -> None:
        """Log in as the demo user (after onboarding)."""
        flow = await self.request(
            "POST",
            "/auth/login_flow",
            json_body={
                "client_id": CLIENT_ID,
                "handler": ["homeassistant", None],
                "redirect_uri": CLIENT_ID,
            },
        )
        result = await self.request(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            json_body={"username": USERNAME, "password": PASSWORD, "client_id": CLIENT_ID},
        )
        if result.get("type") != "create_entry":
            raise DemoError(
                f"cannot log in as {USERNAME}/{PASSWORD} ({result.get('errors')}); "
                "was the password changed? Delete demo_config/ to start over."
            )
        await self._token_from_code(result["result"])

    async def onboard(self, status: list[dict[str, Any]]) -> None:
        """Run the onboarding steps not done yet (all of them on the first run)."""
        done = {step["step"] for step in status if step["done"]}
        if "user" not in done:
            answer = await self.request(
                "POST",
                "/api/onboarding/users",
                json_body={
                    "client_id": CLIENT_ID,
                    "name": "Demo",
                    "username": USERNAME,
                    "password": PASSWORD,
                    "language": "en",
                },
            )
            await self._token_from_code(answer["auth_code"])
            print(f"demo: onboarding: created the owner user {USERNAME}")
        else:
            await self.login()
        if "core_config" not in done:
            await self.request("POST", "/api/onboarding/core_config")
        if "analytics" not in done:
            await self.request("POST", "/api/onboarding/analytics")
        if "integration" not in done:
            await self.request(
                "POST",
                "/api/onboarding/integration",
                json_body={"client_id": CLIENT_ID, "redirect_uri": f"{HA_URL}/?auth_callback=1"},
            )
        if len(done) < len(ONBOARDING_STEPS):
            print("demo: onboarding complete")

    async def wait_running(self, timeout: float = 600.0) -> dict[str, Any]:
        """Wait until Home Assistant has finished starting; returns /api/config."""
        async with asyncio.timeout(timeout):
            while True:
                config = await self.request("GET", "/api/config")
                if config.get("state") == "RUNNING":
                    return config  # type: ignore[no-any-return]
                await asyncio.sleep(1)

    async def entries(self) -> list[dict[str, Any]]:
        """Config entries of the integration."""
        return await self.request(  # type: ignore[no-any-return]
            "GET", f"/api/config/config_entries/entry?domain={DOMAIN}"
        )

    async def add_integration(self, user_input: dict[str, Any]) -> None:
        """Run the config flow (step "user") with `user_input`."""
        try:
            form = await self.request(
                "POST",
                "/api/config/config_entries/flow",
                json_body={"handler": DOMAIN, "show_advanced_options": False},
            )
        except DemoError as err:
            raise DemoError(
                f"could not start the {DOMAIN} config flow: {err}\n"
                "Is custom_components/ev_charging_expert/config_flow.py there and loading? "
                "See demo_config/home-assistant.log."
            ) from err
        if form.get("type") == "abort":
            raise DemoError(f"the config flow aborted: {form.get('reason')}")
        if form.get("type") != "form" or form.get("step_id") != "user":
            raise DemoError(f"unexpected first config flow step: {form}")
        result = await self.request(
            "POST", f"/api/config/config_entries/flow/{form['flow_id']}", json_body=user_input
        )
        if result.get("type") != "create_entry":
            raise DemoError(
                f"the config flow did not create the entry: type={result.get('type')} "
                f"errors={result.get('errors')} reason={result.get('reason')}"
            )

    async def set_options(self, entry_id: str, user_input: dict[str, Any]) -> None:
        """Run the options flow with `user_input` (the fields left out keep their defaults)."""
        form = await self.request(
            "POST", "/api/config/config_entries/options/flow", json_body={"handler": entry_id}
        )
        result = await self.request(
            "POST",
            f"/api/config/config_entries/options/flow/{form['flow_id']}",
            json_body=user_input,
        )
        if result.get("type") != "create_entry":
            raise DemoError(f"the options flow refused {user_input}: {result.get('errors')}")

    async def ws_command(self, command: dict[str, Any]) -> Any:
        """One WebSocket API command (what the REST API lacks: listing subentries and the
        entity registry); returns its result."""
        for attempt in (1, 2):
            try:
                async with self.session.ws_connect(f"{HA_URL}/api/websocket") as ws:
                    await ws.receive_json()  # auth_required
                    await ws.send_json({"type": "auth", "access_token": self.token})
                    auth = await ws.receive_json()
                    if auth.get("type") != "auth_ok":
                        if attempt == 1:
                            await self.login()  # the access token expired
                            continue
                        raise DemoError(f"WebSocket API: {auth}")
                    await ws.send_json({"id": 1, **command})
                    while True:
                        answer = await ws.receive_json()
                        if answer.get("id") == 1 and answer.get("type") == "result":
                            break
            except (aiohttp.ClientError, TypeError, ValueError) as err:  # closed, not JSON
                raise DemoError(f"WebSocket API {command['type']}: {err!r}") from err
            if not answer.get("success"):
                raise DemoError(f"WebSocket API {command['type']}: {answer.get('error')}")
            return answer["result"]
        raise DemoError("WebSocket API: unauthorized")

    async def subentries(self, entry_id: str) -> list[dict[str, Any]]:
        """The entry's subentries: subentry_id, subentry_type, title."""
        return await self.ws_command(  # type: ignore[no-any-return]
            {"type": "config_entries/subentries/list", "entry_id": entry_id}
        )

    async def entity_ids(self, unique_ids: set[str]) -> dict[str, str]:
        """The integration's entity ids by unique id (those that exist)."""
        entities = await self.ws_command({"type": "config/entity_registry/list"})
        return {
            e["unique_id"]: e["entity_id"]
            for e in entities
            if e.get("platform") == DOMAIN and e.get("unique_id") in unique_ids
        }

    async def state(self, entity_id: str) -> dict[str, Any]:
        """One entity's state."""
        return await self.request("GET", f"/api/states/{entity_id}")  # type: ignore[no-any-return]

    async def _subentry_flow(
        self, entry_id: str, subentry_type: str, subentry_id: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"handler": [entry_id, subentry_type]}
        if subentry_id is not None:
            body["subentry_id"] = subentry_id  # reconfigure it
        return await self.request(  # type: ignore[no-any-return]
            "POST", "/api/config/config_entries/subentries/flow", json_body=body
        )

    async def _subentry_step(self, flow_id: str, user_input: dict[str, Any]) -> dict[str, Any]:
        return await self.request(  # type: ignore[no-any-return]
            "POST", f"/api/config/config_entries/subentries/flow/{flow_id}", json_body=user_input
        )

    async def add_zone(
        self,
        entry_id: str,
        name: str,
        amps: float,
        *,
        parent_id: str = "none",
        meter_id: str | None = None,
        degraded_setpoint: float = 0.0,
    ) -> None:
        """Add a zone (a config subentry) through its flow: static, or dynamic with a meter."""
        form = await self._subentry_flow(entry_id, "zone")
        if form.get("type") != "form":
            raise DemoError(f"unexpected zone flow answer: {form}")
        user_input: dict[str, Any] = {
            "name": name,
            "parent_id": parent_id,
            "max_current": amps,
            "mode": "static" if meter_id is None else "dynamic",
            "degraded_setpoint": degraded_setpoint,
        }
        if meter_id is not None:
            user_input["meter_id"] = meter_id
        result = await self._subentry_step(form["flow_id"], user_input)
        if result.get("type") != "create_entry":
            raise DemoError(
                f"the zone flow did not create the zone: errors={result.get('errors')} "
                f"{result.get('description_placeholders') or ''}"
            )

    async def move_zone(self, entry_id: str, zone_id: str, parent_id: str) -> None:
        """Reconfigure a zone to hang below `parent_id`, the rest unchanged."""
        form = await self._subentry_flow(entry_id, "zone", zone_id)
        if form.get("type") != "form":
            raise DemoError(f"unexpected zone flow answer: {form}")
        user_input = {
            field["name"]: field["default"]
            for field in form.get("data_schema") or []
            if "default" in field
        }
        user_input["parent_id"] = parent_id
        result = await self._subentry_step(form["flow_id"], user_input)
        if result.get("type") != "abort" or result.get("reason") != "reconfigure_successful":
            raise DemoError(
                f"the zone flow did not change the zone: errors={result.get('errors')} "
                f"{result.get('description_placeholders') or result.get('reason') or ''}"
            )

    async def meter_port(self, entry_id: str, meter_id: str) -> int | None:
        """The port a Modbus meter reads (from its reconfigure form, then left unsaved)."""
        form = await self._subentry_flow(entry_id, "meter", meter_id)
        if "flow_id" in form and form.get("type") == "form":
            await self.request(
                "DELETE", f"/api/config/config_entries/subentries/flow/{form['flow_id']}"
            )
        fields = {f["name"]: f for f in form.get("data_schema") or []}
        port = fields.get("port", {}).get("default")
        return int(port) if port is not None else None

    async def add_modbus_meter(
        self,
        entry_id: str,
        name: str,
        *,
        model: str,
        host: str,
        port: int,
        slave_id: int,
        polling_period: float,
    ) -> None:
        """Add a Modbus TCP meter through the meter flow: its menu, then its "modbus" form."""
        menu = await self._subentry_flow(entry_id, "meter")
        if menu.get("type") != "menu" or "modbus" not in (menu.get("menu_options") or []):
            raise DemoError(f"unexpected meter flow answer: {menu}")
        form = await self._subentry_step(menu["flow_id"], {"next_step_id": "modbus"})
        if form.get("type") != "form" or form.get("step_id") != "modbus":
            raise DemoError(f"unexpected meter flow step: {form}")
        result = await self._subentry_step(
            form["flow_id"],
            {
                "name": name,
                "model": model,
                "protocol": "tcp",
                "host": host,
                "port": port,
                "slave_id": slave_id,
                "polling_period": polling_period,
                "timeout": 1.0,
                "reporting_only": False,
                "serial": {"baudrate": "19200", "parity": "E", "stopbits": "1"},
            },
        )
        if result.get("type") != "create_entry":
            raise DemoError(
                f"the meter flow did not create the meter: errors={result.get('errors')} "
                f"{result.get('description_placeholders') or ''}"
            )

    async def integration_states(self) -> list[dict[str, Any]]:
        """States of every entity of the integration."""
        ids = await self.request(
            "POST",
            "/api/template",
            json_body={"template": f"{{{{ integration_entities('{DOMAIN}') | list | tojson }}}}"},
        )
        wanted = set(json.loads(ids) if isinstance(ids, str) else ids)
        states = await self.request("GET", "/api/states")
        return [s for s in states if s["entity_id"] in wanted]
