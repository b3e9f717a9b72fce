"""evcore's Controller as the benches build it: production's composition root, in a bare loop.

Every simulated charger is new, is accepted, and comes from this host: the per-address cap on
unauthenticated connections (a defence against floods) is lifted, or it would refuse the fleet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from custom_components.ev_charging_expert.evcore.controller import Controller


def bench_controller(**settings: Any) -> Controller:
    """A Controller with a memory store and the system clock; `settings` go to SiteSettings.

    Imported late: a bench's load generator processes never import the integration.
    """
    from custom_components.ev_charging_expert.evcore.admission import (  # noqa: PLC0415
        AdmissionLimits,
    )
    from custom_components.ev_charging_expert.evcore.clock import SystemClock  # noqa: PLC0415
    from custom_components.ev_charging_expert.evcore.controller import (  # noqa: PLC0415
        Controller,
    )
    from custom_components.ev_charging_expert.evcore.model import (  # noqa: PLC0415
        NewChargerPolicy,
    )
    from custom_components.ev_charging_expert.evcore.site import (  # noqa: PLC0415
        MemoryStore,
        SiteSettings,
    )

    return Controller(
        clock=SystemClock(),
        store=MemoryStore(),
        settings=SiteSettings(new_charger_policy=NewChargerPolicy.ACCEPT, **settings),
        limits=AdmissionLimits(max_unauthenticated_per_address=1 << 20),
    )
