"""Power meters made of Home Assistant sensor entities, and what a meter's entities show."""

from __future__ import annotations

from dataclasses import dataclass
import logging
import math
from typing import TYPE_CHECKING, Any

from homeassistant.const import (
    ATTR_UNIT_OF_MEASUREMENT,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    UnitOfElectricCurrent,
    UnitOfEnergy,
    UnitOfPower,
)
from homeassistant.core import callback
from homeassistant.helpers.event import (
    async_track_state_change_event,
    async_track_state_report_event,
)
from homeassistant.util.unit_conversion import (
    BaseUnitConverter,
    ElectricCurrentConverter,
    EnergyConverter,
    PowerConverter,
)

from .const import (
    CONF_CURRENTS,
    CONF_ENERGY,
    CONF_MAX_AGE,
    CONF_METER_KIND,
    CONF_POWER_TOTAL,
    CONF_POWERS,
    CONF_VOLTAGE,
    MAX_MAX_AGE,
    MAX_VOLTAGE,
    METER_KIND_HA_SENSORS,
    MIN_MAX_AGE,
    MIN_VOLTAGE,
)
from .evcore.errors import ConfigError
from .evcore.meters import (
    MeterState,
)
from .evcore.meters.external import (
    DEFAULT_MAX_AGE,
    ExternalMeter,
    currents_from_powers,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from homeassistant.core import (
        Event,
        EventStateChangedData,
        EventStateReportedData,
        HomeAssistant,
    )

    from .evcore.clock import Cancelable, Clock

_LOGGER = logging.getLogger(__name__)


class HaSensorMeterConfigError(ConfigError):
    """What is wrong with an HA-sensor meter: a message, and the flow's error key for it."""

    def __init__(
        self, message: str, key: str, placeholders: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.key = key
        self.placeholders = dict(placeholders) if placeholders else None


@dataclass(frozen=True, slots=True)
class HaSensorMeterConfig:
    """A meter made of Home Assistant sensors; valid once built.

    Three currents (A), or three powers (W) and a nominal voltage; optionally a total power and
    an energy sensor.
    """

    name: str
    currents: tuple[str, str, str] | None = None
    powers: tuple[str, str, str] | None = None
    voltage: float = 230.0
    power_total: str | None = None
    energy: str | None = None
    max_age: float = DEFAULT_MAX_AGE

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise HaSensorMeterConfigError("name is required", "name_required")
        if self.currents is not None and self.powers is not None:
            raise HaSensorMeterConfigError(
                "give either the three current sensors or the three power sensors, not both",
                "currents_and_powers",
            )
        required = self.required
        if not required:
            raise HaSensorMeterConfigError(
                "give the three current sensors (A), or the three power sensors (W) and the "
                "nominal voltage",
                "sensors_missing",
            )
        if len(set(required)) != len(required):
            raise HaSensorMeterConfigError("each phase needs its own sensor", "same_sensor")
        if self.powers is not None and not (
            math.isfinite(self.voltage) and MIN_VOLTAGE <= self.voltage <= MAX_VOLTAGE
        ):
            raise HaSensorMeterConfigError(
                f"nominal voltage must be between {MIN_VOLTAGE:g} and {MAX_VOLTAGE:g} V "
                f"(got {self.voltage:g})",
                "voltage_out_of_range",
                {"min": f"{MIN_VOLTAGE:g}", "max": f"{MAX_VOLTAGE:g}"},
            )
        if not (math.isfinite(self.max_age) and MIN_MAX_AGE <= self.max_age <= MAX_MAX_AGE):
            raise HaSensorMeterConfigError(
                f"max age must be between {MIN_MAX_AGE:g} and {MAX_MAX_AGE:g} s "
                f"(got {self.max_age:g})",
                "max_age_out_of_range",
                {"min": f"{MIN_MAX_AGE:g}", "max": f"{MAX_MAX_AGE:g}"},
            )

    @property
    def required(self) -> tuple[str, ...]:
        """The sensors without which there is no reading (the three phases)."""
        return self.currents or self.powers or ()

    @property
    def entities(self) -> list[str]:
        """Every sensor the meter follows."""
        optional = [e for e in (self.power_total, self.energy) if e]
        return [*self.required, *optional]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HaSensorMeterConfig:
        """From a meter subentry's data; ConfigError names what is wrong."""
        phases: dict[str, tuple[str, str, str] | None] = {}
        for label, keys in (("current", CONF_CURRENTS), ("power", CONF_POWERS)):
            given = [str(data.get(key) or "") for key in keys]
            missing = [f"L{i + 1}" for i, entity in enumerate(given) if not entity]
            if 0 < len(missing) < len(given):
                raise HaSensorMeterConfigError(
                    f"{label} sensors: L1, L2 and L3 are all required (missing "
                    f"{', '.join(missing)})",
                    f"{label}s_incomplete",
                    {"missing": ", ".join(missing)},
                )
            phases[label] = None if missing else (given[0], given[1], given[2])
        try:
            return cls(
                name=str(data.get("name", "")),
                currents=phases["current"],
                powers=phases["power"],
                voltage=float(data.get(CONF_VOLTAGE, 230.0)),
                power_total=data.get(CONF_POWER_TOTAL) or None,
                energy=data.get(CONF_ENERGY) or None,
                max_age=float(data.get(CONF_MAX_AGE, DEFAULT_MAX_AGE)),
            )
        except (TypeError, ValueError) as err:
            raise ConfigError(str(err)) from None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the subentry (`from_dict` of it rebuilds the same config)."""
        data: dict[str, Any] = {
            CONF_METER_KIND: METER_KIND_HA_SENSORS,
            "name": self.name.strip(),
            CONF_MAX_AGE: self.max_age,
        }
        for keys, phases in ((CONF_CURRENTS, self.currents), (CONF_POWERS, self.powers)):
            if phases is not None:
                data.update(zip(keys, phases, strict=True))
        if self.powers is not None:
            data[CONF_VOLTAGE] = self.voltage
        if self.power_total:
            data[CONF_POWER_TOTAL] = self.power_total
        if self.energy:
            data[CONF_ENERGY] = self.energy
        return data


class _UnusableSensorError(Exception):
    """A sensor gives no usable value: the meter has no reading."""

    def __init__(self, state: MeterState, reason: str) -> None:
        super().__init__(reason)
        self.state = state
        self.reason = reason


class HaSensorMeter:
    """Feeds an evcore `ExternalMeter` from Home Assistant sensor entities.

    A phase sensor that is unavailable, unknown, not a number, in an unknown unit, or silent
    (neither changed nor reported) for longer than `max_age` leaves the meter without a reading:
    a lost meter, never "zero" nor "the last value forever".
    """

    def __init__(
        self,
        hass: HomeAssistant,
        meter_id: str,
        config: HaSensorMeterConfig,
        clock: Clock,
        on_change: Callable[[str, bool], None],
    ) -> None:
        self.hass = hass
        self.meter_id = meter_id
        self.config = config
        self.source = ExternalMeter(meter_id, clock, max_age=config.max_age)
        self.state = MeterState.NOT_CONNECTED
        self.reason: str | None = "waiting for the sensors"
        self.last_success: datetime | None = None
        self._clock = clock
        self._on_change = on_change
        self._seen: dict[str, float] = {}
        self._unsubscribe: list[Callable[[], None]] = []
        self._timer: Cancelable | None = None

    @property
    def capabilities(self) -> set[str]:
        """Which optional values the meter reports."""
        caps = {"energy"} if self.config.energy else set()
        if self.config.power_total or self.config.powers:
            caps.add("power")
        return caps

    def start(self) -> None:
        """Follow the sensors; their current states count as just reported."""
        entities = self.config.entities
        now = self._clock.monotonic()
        self._seen = dict.fromkeys(entities, now)
        self._unsubscribe = [
            async_track_state_change_event(self.hass, entities, self._on_state),
            async_track_state_report_event(self.hass, entities, self._on_state),
        ]
        self._refresh()

    def stop(self) -> None:
        """Stop following the sensors."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @callback
    def _on_state(
        self, event: Event[EventStateChangedData] | Event[EventStateReportedData]
    ) -> None:
        self._seen[event.data["entity_id"]] = self._clock.monotonic()
        self._refresh()

    def _refresh(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        before = (self.state, self.reason)
        try:
            currents, total, energy = self._measure()
        except _UnusableSensorError as err:
            self.source.invalidate()
            self.state, self.reason = err.state, err.reason
        else:
            problem = self.source.update(currents, total_power_w=total, energy_wh=energy)
            if problem is not None:  # out of range: a failed read, never a budget
                self.state, self.reason = MeterState.ERROR, problem
            else:
                self.last_success = self._clock.now()
                self.state, self.reason = MeterState.CONNECTED, None
                # Go stale on time even if no sensor says anything more.
                oldest = min(self._seen[e] for e in self.config.required)
                self._timer = self._clock.call_later(
                    oldest + self.config.max_age - self._clock.monotonic(), self._refresh
                )
        # Logged once each way; sensors still missing while HA starts are not news.
        if self.state is not before[0] and MeterState.CONNECTED in (self.state, before[0]):
            if self.state is MeterState.CONNECTED:
                _LOGGER.info("Meter %s: its sensors report", self.config.name)
            else:
                _LOGGER.warning("Meter %s lost: %s", self.config.name, self.reason)
        self._on_change(self.meter_id, (self.state, self.reason) != before)

    def _measure(self) -> tuple[tuple[float, float, float], float | None, float | None]:
        now = self._clock.monotonic()
        for entity_id in self.config.required:
            # Stale at exactly max_age, so the timer that fires then finds it stale.
            if now - self._seen[entity_id] >= self.config.max_age:
                raise _UnusableSensorError(
                    MeterState.NOT_CONNECTED,
                    f"{entity_id}: no update for {self.config.max_age:g} s",
                )
        total: float | None = None
        if self.config.currents is not None:
            amps = [
                abs(self._value(e, ElectricCurrentConverter, UnitOfElectricCurrent.AMPERE))
                for e in self.config.currents
            ]
            currents = (amps[0], amps[1], amps[2])
        else:
            assert self.config.powers is not None  # noqa: S101  # a valid config has one of them
            watts = [self._value(e, PowerConverter, UnitOfPower.WATT) for e in self.config.powers]
            currents = currents_from_powers((watts[0], watts[1], watts[2]), self.config.voltage)
            total = sum(watts)
        if self.config.power_total:
            total = self._optional(self.config.power_total, PowerConverter, UnitOfPower.WATT)
        energy = None
        if self.config.energy:
            energy = self._optional(self.config.energy, EnergyConverter, UnitOfEnergy.WATT_HOUR)
        return currents, total, energy

    def _optional(
        self, entity_id: str, converter: type[BaseUnitConverter], unit: str
    ) -> float | None:
        try:
            return self._value(entity_id, converter, unit)
        except _UnusableSensorError:
            return None

    def _value(self, entity_id: str, converter: type[BaseUnitConverter], unit: str) -> float:
        state = self.hass.states.get(entity_id)
        if state is None:
            raise _UnusableSensorError(MeterState.NOT_CONNECTED, f"{entity_id} does not exist")
        if state.state in (STATE_UNAVAILABLE, STATE_UNKNOWN):
            raise _UnusableSensorError(MeterState.NOT_CONNECTED, f"{entity_id} is {state.state}")
        try:
            value = float(state.state)
        except ValueError:
            raise _UnusableSensorError(
                MeterState.ERROR, f"{entity_id}: {state.state!r} is not a number"
            ) from None
        if not math.isfinite(value):
            raise _UnusableSensorError(
                MeterState.ERROR, f"{entity_id}: {state.state!r} is not a number"
            )
        # No guessing: a kW sensor read as W would hide 99.9 % of the load.
        source_unit = state.attributes.get(ATTR_UNIT_OF_MEASUREMENT)
        if source_unit not in converter.VALID_UNITS:
            units = ", ".join(sorted(u for u in converter.VALID_UNITS if u))
            raise _UnusableSensorError(
                MeterState.ERROR,
                f"{entity_id}: unit {source_unit!r} is not one of {units}",
            )
        return converter.convert(value, source_unit, unit)
