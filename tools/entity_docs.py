"""The entity tables of docs/entities.md, generated from the entities the integration creates.

Generic on purpose: tests/ha/test_entity_docs.py sets up a site that has every kind of device
(the hub, a static and a dynamic zone, a power meter, a station with a connector) and hands the
entities HA holds to `render`; every entity description a platform adds shows up, whoever
wrote it. Names and enum states come from translations/en.json, exactly as the UI shows them.

    python -m tools.entity_docs   # rewrite the tables (that test, with UPDATE_ENTITY_DOCS=1)

The test fails when docs/entities.md differs from what the descriptions say.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import os
from pathlib import Path
import subprocess
import sys
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "entities.md"
TRANSLATIONS = ROOT / "custom_components" / "ev_charging_expert" / "translations" / "en.json"
BEGIN = "<!-- BEGIN GENERATED ENTITY TABLES (python -m tools.entity_docs) -->"
END = "<!-- END GENERATED ENTITY TABLES -->"

# Device kinds in the order a user meets them.
DEVICES = {
    "site": "Site (the EV Charging Expert hub device)",
    "zone": "Zone (one device per switchboard)",
    "meter": "Power meter",
    "station": "Charging station",
    "connector": "Connector",
}


@dataclass(frozen=True, slots=True, order=True)
class EntityRow:
    """One entity as documented."""

    device: str
    platform: str
    key: str
    name: str
    kind: str
    category: str
    enabled: bool
    states: str


def describe(
    device: str, platform: str, description: Any, translations: dict[str, Any]
) -> EntityRow:
    """A row from an entity description (and its translations)."""
    strings = translations.get("entity", {}).get(platform, {})
    translated = strings.get(description.translation_key or "", {})
    name = translated.get("name") or _default_name(description)
    device_class = getattr(description, "device_class", None)
    unit = getattr(description, "native_unit_of_measurement", None)
    state_class = getattr(description, "state_class", None)
    kind = ", ".join(
        str(part)
        for part in (
            _value(device_class),
            _value(unit),
            _value(state_class),
            "box" if _value(getattr(description, "mode", None)) == "box" else None,
        )
        if part
    )
    options = getattr(description, "options", None) or []
    state_names = translated.get("state", {})
    states = ", ".join(
        f"`{o}` ({state_names[o]})" if o in state_names else f"`{o}`" for o in options
    )
    return EntityRow(
        device=device,
        platform=platform,
        key=description.key,
        name=name,
        kind=kind,
        category=_value(description.entity_category) or "",
        enabled=description.entity_registry_enabled_default,
        states=states,
    )


def _value(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def _default_name(description: Any) -> str:
    # Entities without a translation key take their device class's name in HA.
    device_class = _value(getattr(description, "device_class", None))
    return (device_class or description.key).replace("_", " ").capitalize()


def render(rows: list[EntityRow]) -> str:
    """The generated part of docs/entities.md: one table per kind of device."""
    parts = [BEGIN, ""]
    for device, title in DEVICES.items():
        mine = sorted({r for r in rows if r.device == device}, key=lambda r: (r.platform, r.key))
        if not mine:
            continue
        enabled = sum(r.enabled for r in mine)
        parts += [
            f"### {title}",
            "",
            f"{len(mine)} entities, {enabled} enabled by default.",
            "",
            "| Entity | Platform | Key | Kind | Category | Default | States |",
            "|---|---|---|---|---|---|---|",
        ]
        parts += [
            f"| {r.name} | {r.platform.replace('_', ' ')} | `{r.key}` | {r.kind} "
            f"| {r.category} | {'enabled' if r.enabled else 'disabled'} | {r.states} |"
            for r in mine
        ]
        parts.append("")
    parts.append(END)
    return "\n".join(parts)


def translations() -> dict[str, Any]:
    """translations/en.json."""
    data: dict[str, Any] = json.loads(TRANSLATIONS.read_text(encoding="utf-8"))
    return data


def current_tables(text: str) -> str:
    """The generated part of the page as it is."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < 0:
        return ""
    return text[start : end + len(END)]


def write(generated: str) -> None:
    """Replace the generated part of docs/entities.md (appended if missing)."""
    text = DOCS.read_text(encoding="utf-8")
    current = current_tables(text)
    if current:
        text = text.replace(current, generated)
    else:
        text = text.rstrip("\n") + "\n\n" + generated + "\n"
    DOCS.write_text(text, encoding="utf-8")


def main() -> int:
    """Regenerate the tables through the test that sets up the site."""
    env = dict(os.environ, UPDATE_ENTITY_DOCS="1")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command.append(str(ROOT / "tests" / "ha" / "test_entity_docs.py"))
    return subprocess.call(command, cwd=ROOT, env=env)  # noqa: S603  # our own test


if __name__ == "__main__":
    raise SystemExit(main())
