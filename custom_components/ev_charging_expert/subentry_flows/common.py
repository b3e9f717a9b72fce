"""Form helpers shared by the config, options and subentry flows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from homeassistant.helpers import selector
import voluptuous as vol

from ..evcore.config import MAX_CURRENT

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True, slots=True)
class FormError:
    """Why a form was refused: a key of the flow's `error` translations, shown on a field.

    Placeholders carry only values the message needs (a zone's name, a number), never an
    exception's text: the message itself is translated.
    """

    key: str
    field: str = "base"
    placeholders: Mapping[str, str] | None = None

    @property
    def errors(self) -> dict[str, str]:
        """The form's `errors`."""
        return {self.field: self.key}

    @property
    def description_placeholders(self) -> dict[str, str] | None:
        """The form's `description_placeholders`."""
        return dict(self.placeholders) if self.placeholders else None


def translated_select(options: list[str], key: str) -> selector.SelectSelector:
    """A dropdown whose options are translated (`selector.<key>.options`)."""
    return selector.SelectSelector(
        selector.SelectSelectorConfig(
            options=options, translation_key=key, mode=selector.SelectSelectorMode.DROPDOWN
        )
    )


def plain_select(options: list[str]) -> selector.SelectSelector:
    """A dropdown of values shown as they are (names, numbers)."""
    return selector.SelectSelector(
        selector.SelectSelectorConfig(options=options, mode=selector.SelectSelectorMode.DROPDOWN)
    )


def amps(maximum: float = MAX_CURRENT) -> selector.NumberSelector:
    """A current (A) typed in a box."""
    return selector.NumberSelector(
        selector.NumberSelectorConfig(
            min=0,
            max=maximum,
            step=0.1,
            unit_of_measurement="A",
            mode=selector.NumberSelectorMode.BOX,
        )
    )


def suggested(key: str, values: Mapping[str, Any]) -> vol.Optional:
    """An optional field pre-filled with its value (an empty field stays empty on submit)."""
    return vol.Optional(key, description={"suggested_value": values.get(key)})
