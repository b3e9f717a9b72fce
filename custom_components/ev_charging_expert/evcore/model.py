"""Configuration and runtime state types of the site.

`Site` owns every instance; other code reads them and sends commands to `Site`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .config import StationConfig

if TYPE_CHECKING:
    from datetime import datetime


class ConnectorStatus(StrEnum):
    """A connector's state as its charger reports it; `unknown` before its first report."""

    AVAILABLE = "available"
    PREPARING = "preparing"
    CHARGING = "charging"
    SUSPENDED_EVSE = "suspended_evse"
    SUSPENDED_EV = "suspended_ev"
    FINISHING = "finishing"
    RESERVED = "reserved"
    UNAVAILABLE = "unavailable"
    FAULTED = "faulted"
    UNKNOWN = "unknown"


class Registration(StrEnum):
    """Whether the site lets a charger in."""

    ACCEPTED = "accepted"
    PENDING = "pending"  # waiting for the user to accept it
    REMOVED = "removed"  # the user removed it: refused until accepted again


class NewChargerPolicy(StrEnum):
    """What happens to a charger the site has never seen."""

    ACCEPT = "accept"
    PENDING = "pending"


@dataclass(slots=True)
class BootInfo:
    """What the charger said about itself in its last BootNotification."""

    vendor: str
    model: str
    serial_number: str | None = None
    charge_box_serial_number: str | None = None
    firmware_version: str | None = None
    iccid: str | None = None
    imsi: str | None = None
    meter_type: str | None = None
    meter_serial_number: str | None = None

    @property
    def serial(self) -> str | None:
        """The serial number to show: charge point's, else charge box's."""
        return self.serial_number or self.charge_box_serial_number


@dataclass(slots=True)
class Measurement:
    """One normalised sampled value: a measurand on a phase (None = total)."""

    measurand: str
    value: float
    unit: str
    phase: str | None
    context: str
    location: str
    timestamp: datetime


@dataclass(slots=True)
class Transaction:
    """A charging session as the charger reported it."""

    transaction_id: int
    connector_id: int
    id_tag: str
    meter_start_wh: float
    """The energy register at the start: the charger's meter start, or its first register
    sample of the session when the two disagree (see `charger_meter_start_wh`)."""
    started_at: datetime
    reservation_id: int | None = None
    meter_stop_wh: float | None = None
    stopped_at: datetime | None = None
    stop_reason: str | None = None
    stop_id_tag: str | None = None
    transaction_data: list[Measurement] = field(default_factory=list)
    charger_meter_start_wh: float | None = None
    """The meter start the charger sent, when its register samples showed it to be wrong."""
    register_wh: float | None = None
    """The highest energy register sampled during the session (None before the first)."""
    final_energy_wh: float | None = None
    """The session's energy, fixed when it ends."""
    received_at: datetime | None = None
    """When the site heard of the start, on its own clock (the charger's may be wrong)."""

    @property
    def reported_meter_start_wh(self) -> float:
        """The meter start as the charger sent it."""
        if self.charger_meter_start_wh is not None:
            return self.charger_meter_start_wh
        return self.meter_start_wh

    def energy_wh(self) -> float | None:
        """Energy delivered so far (None before the first register sample); never decreases."""
        if self.final_energy_wh is not None:
            return self.final_energy_wh
        if self.register_wh is None:
            return None
        return max(self.register_wh - self.meter_start_wh, 0.0)


PHASES = ("L1", "L2", "L3")


@dataclass(slots=True)
class ConnectorState:
    """Live state of one connector (1..n); connector 0 stands for the whole station."""

    connector_id: int
    status: ConnectorStatus = ConnectorStatus.UNKNOWN
    error_code: str = "NoError"
    info: str | None = None
    vendor_id: str | None = None
    vendor_error_code: str | None = None
    status_at: datetime | None = None
    # Latest value per (measurand, phase); phase None is the total.
    measurements: dict[tuple[str, str | None], Measurement] = field(default_factory=dict)
    transaction: Transaction | None = None
    last_transaction: Transaction | None = None

    def value(self, measurand: str, phase: str | None = None) -> float | None:
        """Latest value of a measurand on a phase, or None."""
        m = self.measurements.get((measurand, phase))
        return None if m is None else m.value

    def current(self, phase: str) -> float | None:
        """Current drawn on one of the connector's phases (A)."""
        return self.value("Current.Import", phase)

    @property
    def power_w(self) -> float | None:
        """Active power imported (W): the total, else the sum of the phases."""
        total = self.value("Power.Active.Import")
        if total is not None:
            return total
        return _sum_phases(self, "Power.Active.Import")

    @property
    def energy_wh(self) -> float | None:
        """Energy register (Wh): the total, else the sum of the phases."""
        total = self.value("Energy.Active.Import.Register")
        if total is not None:
            return total
        return _sum_phases(self, "Energy.Active.Import.Register")

    @property
    def session_energy_wh(self) -> float | None:
        """Energy of the running session, or None when idle."""
        if self.transaction is None:
            return None
        return self.transaction.energy_wh()


def _sum_phases(connector: ConnectorState, measurand: str) -> float | None:
    values = [connector.value(measurand, phase) for phase in PHASES]
    present = [v for v in values if v is not None]
    return sum(present) if present else None


@dataclass(slots=True)
class StationState:
    """Everything the site knows about one charger (charge box identity = `station_id`)."""

    station_id: str
    registration: Registration = Registration.ACCEPTED
    boot: BootInfo | None = None
    connected: bool = False
    connected_since: datetime | None = None
    last_seen: datetime | None = None
    last_heartbeat: datetime | None = None
    last_boot: datetime | None = None
    firmware_status: str | None = None
    diagnostics_status: str | None = None
    # Configuration keys read from the charger (NumberOfConnectors, SupportedFeatureProfiles...).
    configuration: dict[str, str] = field(default_factory=dict)
    connectors: dict[int, ConnectorState] = field(default_factory=dict)
    password_hash: str | None = None
    config: StationConfig = field(default_factory=StationConfig)
    """The installer's description: zone, VIP, connector wiring and ratings."""
    rejected: dict[str, int] = field(default_factory=dict)
    """Values and frames refused since start, per kind (a measurand, "connectorId", ...)."""

    def connector(self, connector_id: int) -> ConnectorState:
        """Return the connector, creating it on first mention."""
        state = self.connectors.get(connector_id)
        if state is None:
            state = self.connectors[connector_id] = ConnectorState(connector_id)
        return state

    @property
    def charge_points(self) -> list[ConnectorState]:
        """The real connectors (1..n), in order."""
        return [c for cid, c in sorted(self.connectors.items()) if cid > 0]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict, for persistence and diagnostics."""
        data = asdict(self)
        data["config"] = self.config.to_dict()
        data["connectors"] = {
            str(cid): _connector_dict(c) for cid, c in sorted(self.connectors.items())
        }
        return data


def _connector_dict(connector: ConnectorState) -> dict[str, Any]:
    data = asdict(connector)
    data["measurements"] = [asdict(m) for m in connector.measurements.values()]
    return data
