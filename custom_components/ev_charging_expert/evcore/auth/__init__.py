"""Authorization: the card registry, modes per zone and station, decisions, local lists.

Nothing here imports Home Assistant. `Controller.cards` is the registry (`CardRegistry`),
`Controller.auth` the modes, the decision point and the charger synchronisation
(`Authorization`). See docs/authorization.md and docs/cards.md.
"""

from .cards import Card, CardError, CardFilter, CardPage, CardRegistry, UnknownCardError, card_key
from .csv_io import CardImportError, ImportProblem, export_csv, parse_csv
from .decision import AcceptAll, AuthDecision, Authorizer, AuthRequest, AuthStatus, Reason
from .modes import AuthMode, AuthSettings, OfflineBehaviour

__all__ = [
    "AcceptAll",
    "AuthDecision",
    "AuthMode",
    "AuthRequest",
    "AuthSettings",
    "AuthStatus",
    "Authorizer",
    "Card",
    "CardError",
    "CardFilter",
    "CardImportError",
    "CardPage",
    "CardRegistry",
    "ImportProblem",
    "OfflineBehaviour",
    "Reason",
    "UnknownCardError",
    "card_key",
    "export_csv",
    "parse_csv",
]
