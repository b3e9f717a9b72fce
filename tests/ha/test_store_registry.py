"""The charger registry file fails closed in HA: kept, a critical repair, every charger refused."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
import pytest
from websockets.exceptions import InvalidStatus

from custom_components.ev_charging_expert.const import DOMAIN
from custom_components.ev_charging_expert.evcore.model import Registration

from .conftest import HaCharger, open_websocket
from .test_repairs import process_repair_fix_flow, repairs_client, start_repair_fix_flow

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from aiohttp.test_utils import TestClient
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry

__all__ = ["repairs_client"]

ISSUE = "registry_unreadable"
TRUNCATED = b'{"version": 1, "minor_version": 1, "key": "x", "data": {"stations": {"CP'


@pytest.fixture
def registry_file(hass: HomeAssistant, tmp_path: Path, mock_config_entry: MockConfigEntry) -> Path:
    """The entry's registry file in a config folder of the test's own, truncated on disk."""
    hass.config.config_dir = str(tmp_path)
    path = tmp_path / ".storage" / f"{DOMAIN}.{mock_config_entry.entry_id}"
    path.parent.mkdir()
    path.write_bytes(TRUNCATED)
    return path


@pytest.fixture
async def loaded(
    hass: HomeAssistant, registry_file: Path, mock_config_entry: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """The entry set up over the truncated file."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    yield mock_config_entry
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()


async def refused_status(port: int, station_id: str) -> int:
    with pytest.raises(InvalidStatus) as err:
        await open_websocket(port, station_id)
    return err.value.response.status_code


async def test_truncated_registry_is_kept_and_every_charger_is_refused_with_a_repair(  # noqa: PLR0917  # pytest fixtures
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    registry_file: Path,
    issue_registry: ir.IssueRegistry,
    hass_storage: dict[str, Any],
    port: int,
) -> None:
    hub = loaded.runtime_data
    kept = [
        p
        for p in registry_file.parent.iterdir()
        if p.name.startswith(f"{registry_file.name}.corrupt.")
    ]

    assert loaded.state is ConfigEntryState.LOADED
    assert len(kept) == 1
    assert kept[0].read_bytes() == TRUNCATED  # never written over
    issue = issue_registry.async_get_issue(DOMAIN, ISSUE)
    assert issue is not None
    assert issue.is_fixable
    assert issue.severity is ir.IssueSeverity.CRITICAL
    assert issue.translation_placeholders["kept_as"] == str(kept[0])
    assert issue.translation_placeholders["path"] == str(registry_file)
    assert issue.translation_placeholders["problem"].startswith("not valid JSON")
    assert await refused_status(port, "CP1") == 503
    assert hub.site.stations == {}
    # The lock itself is what the registry holds now, so a restart stays locked.
    await hass.config_entries.async_unload(loaded.entry_id)
    await hass.async_block_till_done()
    assert hass_storage[f"{DOMAIN}.{loaded.entry_id}"]["data"]["locked"]["kept_as"] == str(kept[0])


async def test_accepting_a_charger_while_locked_is_refused(
    hass: HomeAssistant, loaded: MockConfigEntry
) -> None:
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN, "accept_charger", {"charge_box_id": "CP1"}, blocking=True
        )

    assert err.value.translation_key == "registry_locked"
    assert loaded.runtime_data.site.stations == {}


async def test_restore_choice_changes_nothing_and_says_how(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    repairs_client: TestClient,
    issue_registry: ir.IssueRegistry,
    port: int,
) -> None:
    flow = await start_repair_fix_flow(repairs_client, DOMAIN, ISSUE)
    assert flow["type"] == "menu"
    assert flow["menu_options"] == ["restore", "start_empty"]

    result = await process_repair_fix_flow(
        repairs_client, flow["flow_id"], {"next_step_id": "restore"}
    )

    assert result["type"] == "abort"
    assert result["reason"] == "restore"
    assert issue_registry.async_get_issue(DOMAIN, ISSUE) is not None
    assert await refused_status(port, "CP1") == 503


async def test_start_empty_choice_confirmed_lets_chargers_in_as_new_ones(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    repairs_client: TestClient,
    issue_registry: ir.IssueRegistry,
    port: int,
) -> None:
    hub = loaded.runtime_data
    flow = await start_repair_fix_flow(repairs_client, DOMAIN, ISSUE)
    form = await process_repair_fix_flow(
        repairs_client, flow["flow_id"], {"next_step_id": "start_empty"}
    )
    assert form["type"] == "form"
    assert form["step_id"] == "start_empty"
    assert hub.site.registry_problem is not None  # not before the user confirms

    result = await process_repair_fix_flow(repairs_client, form["flow_id"], {})

    assert result["type"] == "create_entry"
    assert hub.site.registry_problem is None
    assert issue_registry.async_get_issue(DOMAIN, ISSUE) is None
    charger = HaCharger("CP1", await open_websocket(port, "CP1"))
    charger.task = asyncio.create_task(charger.start())
    try:
        assert (await charger.boot()).status == "Accepted"  # the entry's policy: accept
    finally:
        await charger.close()
    assert hub.site.stations["CP1"].registration is Registration.ACCEPTED


async def test_registry_of_unexpected_content_stays_as_it_is(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    mock_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    key = f"{DOMAIN}.{mock_config_entry.entry_id}"
    content = {"version": 1, "stations": {"CP1": {"registration": "bogus"}}}
    hass_storage[key] = {"version": 1, "minor_version": 1, "key": key, "data": content}
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    assert issue_registry.async_get_issue(DOMAIN, ISSUE) is not None
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert hass_storage[key]["data"] == content  # nothing was saved over it


async def test_registry_file_that_cannot_be_read_retries_the_setup(
    hass: HomeAssistant, tmp_path: Path, mock_config_entry: MockConfigEntry
) -> None:
    hass.config.config_dir = str(tmp_path)
    (tmp_path / ".storage" / f"{DOMAIN}.{mock_config_entry.entry_id}").mkdir(parents=True)
    mock_config_entry.add_to_hass(hass)

    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
