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
from ..evcore.config import MAX_ZONE_DEPTH, ZoneConfig, ZoneMode, validate_zones
from ..evcore.errors import ConfigError
from .common import FormError, amps, translated_select

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
        error: FormError | None = None
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
            current = data
        return self.async_show_form(
            step_id=step_id,
            data_schema=self._schema(entry, zone_id, current),
            errors=error.errors if error else {},
            description_placeholders=error.description_placeholders if error else None,
        )

    def _check(
        self, entry: ConfigEntry, zone_id: str | None, data: dict[str, Any]
    ) -> FormError | None:
        """Validate the whole tree with this zone added or changed; None when it is fine."""
        name = data[CONF_ZONE_NAME].casefold()
        if name == UNASSIGNED:
            return FormError("name_reserved", CONF_ZONE_NAME)
        zones, _ = zones_from_entry(entry)
        if any(z.name.strip().casefold() == name for z in zones.values() if z.zone_id != zone_id):
            return FormError("name_taken", CONF_ZONE_NAME)
        if data[CONF_DEGRADED_SETPOINT] > data[CONF_MAX_CURRENT]:
            return FormError("degraded_above_max", CONF_DEGRADED_SETPOINT)
        key = zone_id or "__new__"
        zones[key] = zone_from_subentry(key, data)
        try:
            validate_zones(zones.values())
        except ConfigError:
            # What is left: a sub-zone above its parent, or a tree too deep.
            return FormError("invalid_zone", placeholders={"max_depth": str(MAX_ZONE_DEPTH)})
        parent = zones[key].parent_id
        if parent is not None:
            hub = getattr(entry, "runtime_data", None)
            stations = hub.site.stations.values() if hub is not None else ()
            if any(s.config.zone_id == parent for s in stations):
                return FormError("parent_holds_stations", CONF_PARENT)
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
) -> FormError | None:
    """Zone <-> meter rules; None when they hold.

    A dynamic zone needs a meter, a static zone takes none, a reporting-only meter drives no
    zone, and one meter drives at most one zone (its measurement holds one zone's load).
    """
    if zone.mode is ZoneMode.STATIC:
        return FormError("static_zone_with_meter", CONF_METER) if meter_id else None
    meter = meter_subentries(entry).get(meter_id) if meter_id else None
    if meter is None:
        return FormError("dynamic_zone_without_meter", CONF_METER)
    if meter.data.get(CONF_REPORTING_ONLY):
        return FormError("meter_reporting_only", CONF_METER)
    other = next(
        (z for z, m in zone_meter_ids(entry).items() if m == meter_id and z != zone_id), None
    )
    if other is not None:
        return FormError(
            "meter_drives_other_zone", CONF_METER, {"zone": entry.subentries[other].title}
        )
    return None
