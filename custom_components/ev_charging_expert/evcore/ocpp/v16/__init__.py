"""OCPP 1.6J: the handler that implements the charger port, its Smart Charging and metering."""

from .handler import DEFAULT_TIMEOUT, ChargePointV16

SUBPROTOCOL = "ocpp1.6"

__all__ = ["DEFAULT_TIMEOUT", "SUBPROTOCOL", "ChargePointV16"]
