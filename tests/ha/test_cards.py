"""Cards in Home Assistant: services, selects, sensors, tag scans, the card store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.tag import DOMAIN as TAG_DOMAIN, EVENT_TAG_SCANNED
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import async_capture_events

from custom_components.ev_charging_expert.const import DOMAIN
from custom_components.ev_charging_expert.evcore.auth.modes import AuthMode, OfflineBehaviour

from .conftest import ConnectCharger, entity_id, wait_for, zone_subentry

if TYPE_CHECKING:
    from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser

    from custom_components.ev_charging_expert.coordinator import EvChargingCoordinator


@pytest.fixture
def zone_subentries() -> list[Any]:
    """Two zones."""
    return [zone_subentry("main", "Main", 63.0), zone_subentry("garage", "Garage", 32.0)]


async def _call(
    hass: HomeAssistant, service: str, data: dict[str, Any], context: Context | None = None
) -> Any:
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True, context=context
    )


async def test_card_services_manage_the_registry(
    hass: HomeAssistant, hub: EvChargingCoordinator, hass_read_only_user: MockUser
) -> None:
    user = Context(user_id=hass_read_only_user.id)  # card management is open to users
    added = await _call(
        hass,
        "add_card",
        {"id_tag": "AA11", "vip": True, "comment": "Alice", "zones": ["Garage"]},
        user,
    )
    assert added["zones"] == ["garage"]
    await _call(hass, "add_card", {"id_tag": "BB22"}, user)
    await _call(hass, "update_card", {"id_tag": "bb22", "comment": "Bob"}, user)
    await _call(hass, "bulk_edit_cards", {"id_tags": ["AA11", "BB22"], "authorized": False}, user)
    page = await _call(hass, "list_cards", {"authorized": False, "limit": 1}, user)
    assert page["total"] == 2
    assert [c["id_tag"] for c in page["cards"]] == ["AA11"]
    exported = await _call(hass, "export_cards", {}, user)
    assert exported["count"] == 2
    await _call(hass, "remove_card", {"id_tag": "AA11"}, user)
    assert hub.controller.cards.comment_of("bb22") == "Bob"
    # The export reads back (replace mode).
    result = await _call(hass, "import_cards", {"csv": exported["csv"]}, user)
    assert result == {"imported": 2, "total": 2}
    assert hub.controller.cards.is_vip("AA11") is False  # exported while not authorized


@pytest.mark.parametrize(
    ("service", "data", "key"),
    [
        ("add_card", {"id_tag": "X" * 21}, "invalid_card"),
        ("add_card", {"id_tag": "A1", "comment": "c" * 51}, "invalid_card"),
        ("add_card", {"id_tag": "A1", "zones": ["Roof"]}, "invalid_card"),
        ("update_card", {"id_tag": "NOPE", "vip": True}, "unknown_card"),
        ("import_cards", {"csv": "A1\nA1\n"}, "invalid_card_file"),
        ("import_cards", {"path": "/etc/passwd"}, "invalid_card_file"),
    ],
)
async def test_bad_card_input_is_refused_with_a_translated_error(
    hass: HomeAssistant, hub: EvChargingCoordinator, service: str, data: dict[str, Any], key: str
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, service, data)
    assert err.value.translation_key == key
    assert len(hub.controller.cards) == 0


async def test_modes_are_admin_only(
    hass: HomeAssistant, hub: EvChargingCoordinator, hass_read_only_user: MockUser
) -> None:
    with pytest.raises(Unauthorized):
        await _call(
            hass,
            "set_authorization",
            {"zone": "Main", "mode": "all_cards"},
            Context(user_id=hass_read_only_user.id),
        )
    await _call(hass, "set_authorization", {"zone": "Main", "mode": "all_cards"})
    assert hub.controller.auth.settings.zone_mode == {"main": AuthMode.ALL_CARDS}
    select = entity_id(hass, "select", "zone_main_auth_mode")
    assert hass.states.get(select).state == "all_cards"


async def test_zone_and_station_selects(
    hass: HomeAssistant, hub: EvChargingCoordinator, connect_charger: ConnectCharger
) -> None:
    await connect_charger("CP1")
    zone_offline = entity_id(hass, "select", "zone_garage_offline_behaviour")
    station_mode = entity_id(hass, "select", "CP1_auth_mode")
    assert hass.states.get(station_mode).state == "inherit"
    await hass.services.async_call(
        "select",
        "select_option",
        {"entity_id": zone_offline, "option": "reject_all"},
        blocking=True,
    )
    await hass.services.async_call(
        "select",
        "select_option",
        {"entity_id": station_mode, "option": "reader_disabled"},
        blocking=True,
    )
    settings = hub.controller.auth.settings
    assert settings.zone_offline == {"garage": OfflineBehaviour.REJECT_ALL}
    assert settings.station_mode == {"CP1": AuthMode.READER_DISABLED}
    assert hass.states.get(station_mode).state == "reader_disabled"


async def test_swipe_to_add_shows_in_the_sensors(
    hass: HomeAssistant, hub: EvChargingCoordinator, connect_charger: ConnectCharger
) -> None:
    charger = await connect_charger("CP1")
    pending = entity_id(hass, "sensor", "site_cards_awaiting_approval")
    cards = entity_id(hass, "sensor", "site_cards")
    assert (await charger.authorize("CAFE01")).id_tag_info["status"] == "Invalid"
    await wait_for(hass, lambda: hass.states.get(pending).state == "1")
    await _call(hass, "approve_card", {"id_tag": ["CAFE01"]})
    await wait_for(hass, lambda: hass.states.get(pending).state == "0")
    assert hass.states.get(cards).state == "1"
    assert (await charger.authorize("cafe01")).id_tag_info["status"] == "Accepted"
    sensor = hass.states.get(entity_id(hass, "sensor", "CP1_authorization"))
    assert sensor.state == "not_supported"  # the test charger has no local list
    assert sensor.attributes["mode"] == "known_cards"


async def test_a_card_known_as_a_tag_is_scanned(
    hass: HomeAssistant, hub: EvChargingCoordinator, connect_charger: ConnectCharger
) -> None:
    assert await async_setup_component(hass, TAG_DOMAIN, {})
    await hass.async_block_till_done()
    charger = await connect_charger("CP1")
    scans = async_capture_events(hass, EVENT_TAG_SCANNED)
    await charger.authorize("STRANGER")  # HA knows no such tag: no scan, no new tag
    await _create_tag(hass, "KNOWN1")
    await charger.authorize("KNOWN1")
    await wait_for(hass, lambda: scans)
    assert [e.data["tag_id"] for e in scans] == ["KNOWN1"]
    assert scans[0].data["device_id"] is not None


async def _create_tag(hass: HomeAssistant, tag_id: str) -> None:
    from homeassistant.components.tag import TAG_DATA  # noqa: PLC0415  # test setup only

    await hass.data[TAG_DATA].async_create_item({"tag_id": tag_id, "name": "Badge"})
    await hass.async_block_till_done()


async def test_cards_survive_a_reload(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    await _call(hass, "add_card", {"id_tag": "KEEP1", "comment": "Kept"})
    await _call(hass, "set_authorization", {"zone": "Garage", "offline": "authorize_all"})
    assert await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done()
    hub = init_integration.runtime_data
    assert hub.controller.cards.comment_of("KEEP1") == "Kept"
    assert hub.controller.auth.settings.zone_offline == {"garage": OfflineBehaviour.AUTHORIZE_ALL}
    assert hub.controller.auth.settings.default_mode is AuthMode.KNOWN_CARDS


async def test_a_non_admin_cannot_change_a_mode_through_its_select(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    connect_charger: ConnectCharger,
    hass_read_only_user: MockUser,
) -> None:
    await connect_charger("CP1")
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            "select",
            "select_option",
            {"entity_id": entity_id(hass, "select", "CP1_auth_mode"), "option": "all_cards"},
            blocking=True,
            context=Context(user_id=hass_read_only_user.id),
        )
    assert hub.controller.auth.settings.station_mode == {}


async def test_a_station_is_set_by_its_device(
    hass: HomeAssistant,
    hub: EvChargingCoordinator,
    connect_charger: ConnectCharger,
    device_registry: Any,
) -> None:
    await connect_charger("CP1")
    device = device_registry.async_get_device(identifiers={(DOMAIN, "CP1")})
    await _call(hass, "set_authorization", {"device_id": device.id, "offline": "reject_all"})
    assert hub.controller.auth.settings.station_offline == {"CP1": OfflineBehaviour.REJECT_ALL}
    with pytest.raises(ServiceValidationError):
        await _call(hass, "set_authorization", {"device_id": "nope", "mode": "all_cards"})
    # Approving is all or nothing.
    await _call(hass, "add_card", {"id_tag": "A1", "authorized": False})
    with pytest.raises(ServiceValidationError):
        await _call(hass, "approve_card", {"id_tag": ["A1", "NOPE"]})
    assert not hub.controller.cards.get("A1").authorized
