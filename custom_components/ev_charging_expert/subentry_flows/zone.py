"""Subentry flow of a zone (switchboard): its place in the tree, its budget and meter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigSubentryFlow, SubentryFlowResult
from homeassistant.helpers import selector
import voluptuous as vol

from ..const import (
    CONF_DEGRADED_SETPOINT,
    CONF_MAX_CURRENT,
    CONF_METER,
    CONF_MODE,
    CONF_PARENT,
    CONF_REPORTING_ONLY,
    CONF_ZONE_NAME,
    NO_METER,
    NO_PARENT,
    UNASSIGNED,
)
from ..entry_data import (
    meter_subentries,
    zone_from_subentry,
    zone_meter_ids,
    zones_from_entry,
)
from ..evcore.config import ZoneConfig, ZoneMode, validate_zones
from ..evcore.errors import ConfigError
from .common import amps, translated_select

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry


class ZoneSubentryFlow(ConfigSubentryFlow):
    """Add or change a zone (switchboard)."""

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Add a zone."""
        return await self._zone_form("user", user_input, None)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change a zone; the allocation follows at once."""
        return await self._zone_form("reconfigure", user_input, self._reconfigure_subentry_id)

    async def _zone_form(
        self, step_id: str, user_input: dict[str, Any] | None, zone_id: str | None
    ) -> SubentryFlowResult:
        entry = self._get_entry()
        current = entry.subentries[zone_id].data if zone_id else {}
        errors: dict[str, str] = {}
        placeholders = {"error": ""}
        if user_input is not None:
            data = {
                CONF_ZONE_NAME: str(user_input[CONF_ZONE_NAME]).strip(),
                CONF_PARENT: user_input.get(CONF_PARENT, NO_PARENT),
                CONF_MAX_CURRENT: float(user_input[CONF_MAX_CURRENT]),
                CONF_MODE: user_input[CONF_MODE],
                CONF_DEGRADED_SETPOINT: float(user_input.get(CONF_DEGRADED_SETPOINT, 0.0)),
            }
            if (meter := user_input.get(CONF_METER, NO_METER)) not in ("", NO_METER):
                data[CONF_METER] = meter
            error = self._check(entry, zone_id, data)
            if error is None:
                if zone_id is None:
                    return self.async_create_entry(title=data[CONF_ZONE_NAME], data=data)
                return self.async_update_and_abort(
                    entry, entry.subentries[zone_id], title=data[CONF_ZONE_NAME], data=data
                )
            errors["base"] = "invalid_zone"
            placeholders["error"] = error
            current = data
        return self.async_show_form(
            step_id=step_id,
            data_schema=self._schema(entry, zone_id, current),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _check(self, entry: ConfigEntry, zone_id: str | None, data: dict[str, Any]) -> str | None:
        """Validate the whole tree with this zone added or changed; None when it is fine."""
        if data[CONF_ZONE_NAME].casefold() == UNASSIGNED:
            return f"{UNASSIGNED!r} is reserved for stations that are in no zone"
        zones, _ = zones_from_entry(entry)
        key = zone_id or "__new__"
        zones[key] = zone_from_subentry(key, data)
        try:
            validate_zones(zones.values())
        except ConfigError as err:
            return str(err)
        parent = zones[key].parent_id
        if parent is not None:
            hub = getattr(entry, "runtime_data", None)
            stations = hub.site.stations.values() if hub is not None else ()
            holding = sorted(s.station_id for s in stations if s.config.zone_id == parent)
            if holding:
                return (
                    f"zone {zones[parent].name!r} holds stations ({', '.join(holding[:5])}); "
                    "stations go in zones without sub-zones: move them first"
                )
        return _zone_meter_error(entry, zone_id, zones[key], data.get(CONF_METER))

    def _schema(self, entry: ConfigEntry, zone_id: str | None, current: Any) -> vol.Schema:
        zones, _ = zones_from_entry(entry)
        # A zone cannot hang below itself or one of its own sub-zones.
        excluded = {zone_id} if zone_id else set()
        changed = True
        while changed:
            changed = False
            for zone in zones.values():
                if zone.parent_id in excluded and zone.zone_id not in excluded:
                    excluded.add(zone.zone_id)
                    changed = True
        parents = [
            selector.SelectOptionDict(value=z.zone_id, label=z.name)
            for z in sorted(zones.values(), key=lambda z: z.name.casefold())
            if z.zone_id not in excluded
        ]
        return vol.Schema(
            {
                vol.Required(CONF_ZONE_NAME, default=current.get(CONF_ZONE_NAME, "")): str,
                vol.Required(
                    CONF_PARENT, default=current.get(CONF_PARENT) or NO_PARENT
                ): selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=[selector.SelectOptionDict(value=NO_PARENT, label="—"), *parents],
                        mode=selector.SelectSelectorMode.DROPDOWN,
                    )
                ),
                vol.Required(CONF_MAX_CURRENT, default=current.get(CONF_MAX_CURRENT, 32.0)): amps(),
                vol.Required(
                    CONF_MODE, default=current.get(CONF_MODE, ZoneMode.STATIC)
                ): translated_select([m.value for m in ZoneMode], CONF_MODE),
                vol.Required(
                    CONF_DEGRADED_SETPOINT, default=current.get(CONF_DEGRADED_SETPOINT, 0.0)
                ): amps(),
                **_zone_meter_field(entry, zone_id, current.get(CONF_METER)),
            }
        )


def _zone_meter_field(
    entry: ConfigEntry, zone_id: str | None, current: str | None
) -> dict[Any, Any]:
    """The meter select: none, or a meter that may drive a zone and drives no other one."""
    taken = {m for z, m in zone_meter_ids(entry).items() if z != zone_id}
    meters = [
        selector.SelectOptionDict(value=meter_id, label=subentry.title)
        for meter_id, subentry in sorted(
            meter_subentries(entry).items(), key=lambda item: item[1].title.casefold()
        )
        if not subentry.data.get(CONF_REPORTING_ONLY) and meter_id not in taken
    ]
    default = current if current in {m["value"] for m in meters} else NO_METER
    return {
        vol.Optional(CONF_METER, default=default): selector.SelectSelector(
            selector.SelectSelectorConfig(
                options=[selector.SelectOptionDict(value=NO_METER, label="—"), *meters],
                mode=selector.SelectSelectorMode.DROPDOWN,
            )
        )
    }


def _zone_meter_error(
    entry: ConfigEntry, zone_id: str | None, zone: ZoneConfig, meter_id: str | None
) -> str | None:
    """Zone <-> meter rules; None when they hold.

    A dynamic zone needs a meter, a static zone takes none, a reporting-only meter drives no
    zone, and one meter drives at most one zone (its measurement holds one zone's load).
    """
    if zone.mode is ZoneMode.STATIC:
        return (
            "a static zone has a fixed budget and takes no power meter: choose none, or make "
            "the zone dynamic"
            if meter_id
            else None
        )
    meter = meter_subentries(entry).get(meter_id) if meter_id else None
    if meter is None:
        return "a dynamic zone needs a power meter: add one (Power meter), then choose it here"
    if meter.data.get(CONF_REPORTING_ONLY):
        return f"power meter {meter.title!r} is for reporting only and cannot drive a zone"
    other = next(
        (z for z, m in zone_meter_ids(entry).items() if m == meter_id and z != zone_id), None
    )
    if other is not None:
        return (
            f"power meter {meter.title!r} already drives zone "
            f"{entry.subentries[other].title!r}: one meter drives at most one zone"
        )
    return None
