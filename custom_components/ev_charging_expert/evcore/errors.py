"""The exception tree of evcore; the HA glue maps each class to a translated error."""

from __future__ import annotations


class EvcoreError(Exception):
    """Base class of every error evcore raises on purpose."""


class ConfigError(EvcoreError):
    """A configuration value is invalid."""


class ChargerError(EvcoreError):
    """A request to a charger failed."""

    def __init__(self, station_id: str, message: str) -> None:
        super().__init__(f"{station_id}: {message}")
        self.station_id = station_id


class ChargerNotConnectedError(ChargerError):
    """The charger has no open connection."""

    def __init__(self, station_id: str) -> None:
        super().__init__(station_id, "not connected")


class ChargerTimeoutError(ChargerError):
    """The charger did not answer in time."""

    def __init__(self, station_id: str, action: str, timeout: float) -> None:
        super().__init__(station_id, f"no answer to {action} within {timeout:g} s")
        self.action = action
        self.timeout = timeout


class ChargerCallError(ChargerError):
    """The charger answered a request with an OCPP CallError."""

    def __init__(self, station_id: str, action: str, code: str, description: str) -> None:
        super().__init__(station_id, f"{action} failed: {code} {description}".rstrip())
        self.action = action
        self.code = code
        self.description = description


class ChargerRejectedError(ChargerError):
    """The charger answered, but refused the request (status Rejected, NotSupported, ...)."""

    def __init__(self, station_id: str, action: str, status: str) -> None:
        super().__init__(station_id, f"{action} answered {status}")
        self.action = action
        self.status = status


class UnknownStationError(EvcoreError):
    """No station with that charge box identity is known."""

    def __init__(self, station_id: str) -> None:
        super().__init__(f"unknown station {station_id!r}")
        self.station_id = station_id


class ChargerInputError(EvcoreError):
    """A charger sent a value it may not send (a connector it does not have, an absurd meter)."""

    def __init__(self, station_id: str, field: str, message: str) -> None:
        super().__init__(f"{station_id!r}: {field} {message}")
        self.station_id = station_id
        self.field = field
        self.message = message


class InvalidIdentityError(ConfigError):
    """A charge box identity breaks the identity rule (see `admission.identity_problem`)."""

    def __init__(self, station_id: str, problem: str) -> None:
        super().__init__(f"invalid charge box identity {station_id!r}: {problem}")
        self.station_id = station_id
        self.problem = problem


class StoreCorruptError(EvcoreError):
    """The saved station registry cannot be read.

    `kept_as` names where the unreadable data were set aside; None when they stay where they
    are (then nothing may be saved over them).
    """

    def __init__(self, problem: str, kept_as: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.kept_as = kept_as


class RegistryLockedError(EvcoreError):
    """The station registry could not be read: nothing is admitted until the user decides."""

    def __init__(self) -> None:
        super().__init__("the station registry could not be read; restore it or start empty")
