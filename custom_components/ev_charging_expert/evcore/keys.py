"""Typed identities: a connector is a (station, connector) pair, never a string to parse.

Charge box identities are free text (a charger may call itself `A#1` or `a/b c`), so no key
is ever built by joining them with a separator and split again.
"""

from __future__ import annotations

from typing import NamedTuple


class ConnectorKey(NamedTuple):
    """One connector of one station (connector 1..n; 0 stands for the whole station)."""

    station_id: str
    connector_id: int

    def __str__(self) -> str:
        # For logs and messages only; never parsed back.
        return f"{self.station_id!r} connector {self.connector_id}"
