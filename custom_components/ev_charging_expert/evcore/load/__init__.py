"""Load management: share each zone's current between the EVs and deliver it safely."""

from .control import ChargerControl, Control, LoadState, Run
from .manager import LoadManager

__all__ = ["ChargerControl", "Control", "LoadManager", "LoadState", "Run"]
