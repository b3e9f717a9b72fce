"""Custom meter models: the model flow, import / export service actions, models in use."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import Context
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError, Unauthorized
import pytest

from custom_components.ev_charging_expert.const import (
    DOMAIN,
    SUBENTRY_METER,
    SUBENTRY_METER_MODEL,
)
from custom_components.ev_charging_expert.evcore.meters import ModelRegistry

from .conftest import (
    entity_id,
    meter_subentry,
    meters_idle,
    modbus_form,
    modbus_meter_data,
    start_subentry_flow,
    submit,
)

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigSubentryDataWithId
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers import issue_registry as ir
    from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser

    from custom_components.ev_charging_expert.coordinator import EvChargingCoordinator
    from tools.sim.modbus_meter import MeterSimulator

pytestmark = pytest.mark.usefixtures("manual_hub_clock")

SDM = "SDM630"  # a custom model: three input-register float32 currents, no energy
SDM_DATA: dict[str, Any] = {
    "name": SDM,
    "numbering": "address",
    "max_gap": 0,
    "registers": {
        f"current_l{p}": {
            "address": 6 + 2 * p,
            "format": "float32",
            "word_order": "big",
            "type": "input",
            "scale": 1.0,
        }
        for p in (1, 2, 3)
    },
}
MODEL = "sdm"  # its subentry id
METER = "grid"


def register(address: int | None = None, **values: Any) -> dict[str, Any]:
    """One quantity's section of the model form."""
    section = {"format": "float32", "word_order": "big", "register_type": "holding", "scale": 1.0}
    section.update(values)
    if address is not None:
        section["address"] = address
    return section


def model_form(name: str, **registers: dict[str, Any]) -> dict[str, Any]:
    """The model form; quantities not given have an empty section."""
    quantities = [
        "current_l1",
        "current_l2",
        "current_l3",
        "power_l1",
        "power_l2",
        "power_l3",
        "power_total",
        "energy_delivered",
    ]
    return {
        "name": name,
        "numbering": "register",
        "max_gap": 0,
        **{q: registers.get(q, register()) for q in quantities},
    }


async def start_model_flow(
    hass: HomeAssistant, entry: MockConfigEntry, model_id: str | None = None
) -> dict[str, Any]:
    """Open the form: a new one, or the reconfiguration of `model_id`."""
    return await start_subentry_flow(hass, entry, SUBENTRY_METER_MODEL, model_id)


def models_file(*models: dict[str, Any]) -> str:
    """A models file as the export writes it."""
    return json.dumps(
        {"format": "ev_charging_expert/meter-models", "version": 1, "models": list(models)}
    )


def model_titles(entry: MockConfigEntry) -> list[str]:
    """The titles of the entry's meter model subentries."""
    return sorted(
        s.title for s in entry.subentries.values() if s.subentry_type == SUBENTRY_METER_MODEL
    )


async def import_models(hass: HomeAssistant, text: str, **data: Any) -> dict[str, Any] | None:
    """Call the import action."""
    return await hass.services.async_call(
        DOMAIN,
        "import_meter_models",
        {"json": text, **data},
        blocking=True,
        return_response=True,
    )


async def export_models(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    """Call the export action."""
    response = await hass.services.async_call(
        DOMAIN, "export_meter_models", data, blocking=True, return_response=True
    )
    assert response is not None
    return response


@pytest.fixture
def zone_subentries() -> list[ConfigSubentryDataWithId]:
    """No subentries unless a test says otherwise."""
    return []


# ---------------------------------------------------------------------------- the model flow


async def test_model_flow_creates_a_model_a_meter_can_use(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    meter_simulator: MeterSimulator,
) -> None:
    flow = await start_model_flow(hass, init_integration)
    assert flow["type"] is FlowResultType.FORM
    assert flow["step_id"] == "model"

    result = await submit(
        hass,
        flow,
        model_form(
            SDM,
            current_l1=register(7, register_type="input"),
            current_l2=register(9, register_type="input"),
            current_l3=register(11, register_type="input"),
        )
        | {"numbering": "address"},
    )

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == SDM
    assert result["data"] == {
        **SDM_DATA,
        "registers": {
            f"current_l{p}": {**SDM_DATA["registers"][f"current_l{p}"], "address": 5 + 2 * p}
            for p in (1, 2, 3)
        },
    }
    assert SDM in hub.controller.meters.models.custom
    # A meter of that model reads the simulator through it.
    meter_simulator.add_meter(hub.controller.meters.models.get(SDM), 2, currents=(7.0, 8.0, 9.0))
    menu = await hass.config_entries.subentries.async_init(
        (init_integration.entry_id, "meter"), context={"source": SOURCE_USER}
    )
    form = await submit(hass, menu, {"next_step_id": "modbus"})
    (models,) = [v for k, v in form["data_schema"].schema.items() if k == "model"]
    assert SDM in models.config["options"]
    result = await submit(
        hass,
        form,
        {
            "name": "Car park",
            "model": SDM,
            "protocol": "tcp",
            "host": "127.0.0.1",
            "port": meter_simulator.port,
            "slave_id": 2,
            "polling_period": 0.5,
            "timeout": 1.0,
            "reporting_only": False,
            "serial": {"baudrate": "19200", "parity": "E", "stopbits": "1"},
        },
    )
    await meters_idle(hass, hub)
    (meter_id,) = hub.meters.ids()
    state = hass.states.get(entity_id(hass, "sensor", f"meter_{meter_id}_current_l3"))
    assert state.state == "9.0"
    # The model reports neither power nor energy: no such entities.
    assert "energy" not in hub.meters.entities[meter_id]
    assert "power" not in hub.meters.entities[meter_id]


@pytest.mark.parametrize(
    ("form", "errors"),
    [
        (
            model_form("Mine", current_l1=register(1), current_l3=register(5)),
            {"base": "invalid_model"},
        ),
        (
            model_form(
                "Mine",
                current_l1=register(1),
                current_l2=register(3),
                current_l3=register(5),
                energy_delivered=register(0, format="int64"),
            ),
            {"base": "invalid_model"},
        ),
        (
            model_form(
                "mtz", current_l1=register(1), current_l2=register(3), current_l3=register(5)
            ),
            {"name": "name_taken"},
        ),
        (
            model_form(
                "Mine",
                current_l1=register(1, scale=0),
                current_l2=register(3),
                current_l3=register(5),
            ),
            {"base": "invalid_model"},
        ),
    ],
    ids=["missing_current", "address_range", "builtin_name", "zero_scale"],
)
async def test_invalid_model_is_refused_naming_the_field(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    form: dict[str, Any],
    errors: dict[str, str],
) -> None:
    flow = await start_model_flow(hass, init_integration)

    result = await submit(hass, flow, form)

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert hub.controller.meters.models.custom == {}


@pytest.mark.parametrize(
    "zone_subentries",
    [
        [
            meter_subentry(MODEL, SDM, SDM_DATA, subentry_type=SUBENTRY_METER_MODEL),
            meter_subentry(METER, "Grid", modbus_meter_data(1, model=SDM)),
        ]
    ],
)
async def test_renaming_a_model_keeps_its_meters_on_it(
    hass: HomeAssistant, init_integration: MockConfigEntry, hub: EvChargingCoordinator
) -> None:
    flow = await start_model_flow(hass, init_integration, MODEL)
    sections = {f"current_l{p}": register(6 + 2 * p, register_type="input") for p in (1, 2, 3)}

    result = await submit(
        hass, flow, model_form("SDM630 v2", **sections) | {"numbering": "address"}
    )

    assert result["reason"] == "reconfigure_successful"
    assert init_integration.subentries[METER].data["model"] == "SDM630 v2"
    assert hub.controller.meters[METER].model.name == "SDM630 v2"
    assert hub.meters.errors == {}


@pytest.mark.parametrize(
    "zone_subentries",
    [
        [
            meter_subentry(MODEL, SDM, SDM_DATA, subentry_type=SUBENTRY_METER_MODEL),
            meter_subentry(METER, "Grid", modbus_meter_data(1, model=SDM)),
        ]
    ],
)
async def test_deleting_a_model_in_use_makes_its_meters_unusable_with_a_repair(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    issue_registry: ir.IssueRegistry,
) -> None:
    hass.config_entries.async_remove_subentry(init_integration, MODEL)
    await hass.async_block_till_done()

    assert hub.meters.source(METER) is None
    assert hub.meters.errors == {METER: "unknown meter model 'SDM630'"}
    state = hass.states.get(entity_id(hass, "sensor", f"meter_{METER}_connection"))
    assert state.state == "error"
    assert state.attributes["reason"] == "unknown meter model 'SDM630'"
    issue = issue_registry.async_get_issue(DOMAIN, f"meter_invalid_{METER}")
    assert issue.translation_placeholders == {
        "meter": "Grid",
        "error": "unknown meter model 'SDM630'",
    }

    # Imported back, the meter works again and the repair goes.
    await import_models(hass, models_file(SDM_DATA))
    await hass.async_block_till_done()
    assert hub.meters.source(METER) is not None
    assert issue_registry.async_get_issue(DOMAIN, f"meter_invalid_{METER}") is None


# ---------------------------------------------------------------------------- import / export


@pytest.mark.parametrize(
    "zone_subentries",
    [
        [
            meter_subentry(MODEL, SDM, SDM_DATA, subentry_type=SUBENTRY_METER_MODEL),
            meter_subentry(METER, "Grid", modbus_meter_data(1, model=SDM)),
        ]
    ],
)
async def test_a_model_deleted_while_its_meter_form_is_open_is_refused(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    flow = await start_subentry_flow(hass, init_integration, SUBENTRY_METER, METER)
    hass.config_entries.async_remove_subentry(init_integration, MODEL)
    await hass.async_block_till_done()

    result = await submit(hass, flow, modbus_form(1, name="Grid", model=SDM))

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"model": "unknown_model"}


def other_model(name: str) -> dict[str, Any]:
    """A second valid model."""
    return {
        "name": name,
        "registers": {f"current_l{p}": {"address": 100 + 2 * p} for p in (1, 2, 3)},
    }


async def test_import_creates_model_subentries_and_export_gives_them_back(
    hass: HomeAssistant, init_integration: MockConfigEntry, hub: EvChargingCoordinator
) -> None:
    response = await import_models(hass, models_file(SDM_DATA, other_model("Other")))
    await hass.async_block_till_done()

    assert response == {"imported": [SDM, "Other"]}
    assert model_titles(init_integration) == ["Other", SDM]
    assert sorted(hub.controller.meters.models.custom) == ["Other", SDM]

    exported = await export_models(hass)

    assert json.loads(exported["json"])["models"] == exported["models"]
    assert [m["name"] for m in exported["models"]] == [SDM, "Other"]
    assert exported["models"][0] == SDM_DATA
    # Round trip: the exported file is accepted by a fresh catalogue as the same models.
    assert ModelRegistry().import_json(exported["json"]) == list(
        hub.controller.meters.models.custom.values()
    )
    only = await export_models(hass, names=["Other"])
    assert [m["name"] for m in only["models"]] == ["Other"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            models_file(
                SDM_DATA,
                {"name": "Broken", "registers": {"current_l1": {"address": 1}}},
            ),
            "models[1] ('Broken') registers: current_l2, current_l3 is required",
        ),
        (
            models_file(
                other_model("Fine"),
                {
                    **other_model("Bad format"),
                    "registers": {
                        **other_model("x")["registers"],
                        "energy_delivered": {"address": 5, "format": "float16"},
                    },
                },
            ),
            (
                "models[1] ('Bad format') registers.energy_delivered.format: 'float16' is not one "
                "of ['float32', 'int64', 'int32', 'uint32', 'int16', 'uint16']"
            ),
        ),
        (
            models_file(other_model("Twice"), other_model("twice")),
            "models[1] ('twice'): the name appears twice in the file",
        ),
        ("{not json", "not a JSON file: "),
    ],
    ids=["missing_registers", "bad_format", "duplicate", "not_json"],
)
async def test_a_bad_models_file_changes_nothing_and_names_the_entry(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hub: EvChargingCoordinator,
    text: str,
    error: str,
) -> None:
    await import_models(hass, models_file(other_model("Kept")))
    await hass.async_block_till_done()
    before = dict(init_integration.subentries)

    with pytest.raises(ServiceValidationError) as err:
        await import_models(hass, text)

    assert err.value.translation_key == "invalid_meter_models"
    assert err.value.translation_placeholders["error"].startswith(error)
    await hass.async_block_till_done()
    assert dict(init_integration.subentries) == before
    assert list(hub.controller.meters.models.custom) == ["Kept"]


async def test_import_replaces_a_model_of_the_same_name_only_when_asked(
    hass: HomeAssistant, init_integration: MockConfigEntry, hub: EvChargingCoordinator
) -> None:
    await import_models(hass, models_file(SDM_DATA))
    await hass.async_block_till_done()
    (model_id,) = [
        s.subentry_id
        for s in init_integration.subentries.values()
        if s.subentry_type == SUBENTRY_METER_MODEL
    ]
    changed = {**SDM_DATA, "name": "sdm630", "max_gap": 4}

    with pytest.raises(ServiceValidationError) as err:
        await import_models(hass, models_file(changed))
    assert err.value.translation_placeholders == {
        "error": "models[0] ('sdm630'): a custom model called 'sdm630' already exists"
    }

    await import_models(hass, models_file(changed), replace=True)
    await hass.async_block_till_done()

    # Replaced in place: the same subentry, the new name and content.
    assert init_integration.subentries[model_id].title == "sdm630"
    assert init_integration.subentries[model_id].data["max_gap"] == 4
    assert list(hub.controller.meters.models.custom) == ["sdm630"]


async def test_exporting_an_unknown_model_is_refused(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await export_models(hass, names=["Nope"])

    assert err.value.translation_key == "unknown_meter_model"
    assert err.value.translation_placeholders == {"error": "unknown custom model 'Nope'"}


async def test_import_is_admin_only(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_read_only_user: MockUser,
    hass_admin_user: MockUser,
) -> None:
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN,
            "import_meter_models",
            {"json": models_file(SDM_DATA)},
            blocking=True,
            context=Context(user_id=hass_read_only_user.id),
        )
    assert model_titles(init_integration) == []

    await hass.services.async_call(
        DOMAIN,
        "import_meter_models",
        {"json": models_file(SDM_DATA)},
        blocking=True,
        context=Context(user_id=hass_admin_user.id),
    )
    await hass.async_block_till_done()
    assert model_titles(init_integration) == [SDM]
