"""The catalogue of meter models: the built-in ones plus the installer's custom models.

Custom models travel as JSON (export some or all, import a file). A file is checked against a
JSON schema (with the `jsonschema` package) and then against the rules of `validate_model`;
an import either adds every model of the file or changes nothing, and its error names the entry
and the field that is wrong.

File format (version 1)::

    {"format": "ev_charging_expert/meter-models", "version": 1,
     "models": [{"name": "My meter", "numbering": "register", "max_gap": 0,
                 "registers": {"current_l1": {"address": 1, "format": "float32",
                                              "word_order": "big", "type": "holding",
                                              "scale": 1}, ...}}]}

A bare list of model objects is accepted on import too.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator

from ..errors import ConfigError
from ..modbus import RegisterFormat, WordOrder
from .models import (
    BUILTIN_MODELS,
    CURRENTS,
    MAX_READ_GAP,
    MeterModel,
    Numbering,
    Quantity,
    RegisterSpec,
    RegisterType,
    make_model,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

FILE_FORMAT = "ev_charging_expert/meter-models"
FILE_VERSION = 1

_REGISTER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["address"],
    "additionalProperties": False,
    "properties": {
        "address": {"type": "integer", "minimum": 0, "maximum": 65536},
        "format": {"enum": [f.value for f in RegisterFormat]},
        "word_order": {"enum": [w.value for w in WordOrder]},
        "type": {"enum": [t.value for t in RegisterType]},
        "scale": {"type": "number", "not": {"const": 0}},
        "invalid": {"type": ["integer", "null"]},
    },
}
_MODEL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "registers"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": r"\S"},
        "numbering": {"enum": [n.value for n in Numbering]},
        "max_gap": {"type": "integer", "minimum": 0, "maximum": MAX_READ_GAP},
        "notes": {"type": "string", "maxLength": 2000},
        "registers": {
            "type": "object",
            "required": [q.value for q in CURRENTS],
            "additionalProperties": False,
            "properties": {q.value: _REGISTER_SCHEMA for q in Quantity},
        },
    },
}
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "models"],
    "additionalProperties": False,
    "properties": {
        "format": {"const": FILE_FORMAT},
        "version": {"const": FILE_VERSION},
        "models": {"type": "array", "items": _MODEL_SCHEMA, "maxItems": 500},
    },
}
_VALIDATOR = Draft202012Validator(SCHEMA)


def model_to_data(model: MeterModel) -> dict[str, Any]:
    """A model as plain JSON-ready data."""
    registers: dict[str, Any] = {}
    for quantity in Quantity:
        spec = model.registers.get(quantity)
        if spec is None:
            continue
        entry: dict[str, Any] = {
            "address": spec.address,
            "format": spec.format.value,
            "word_order": spec.word_order.value,
            "type": spec.register_type.value,
            "scale": spec.scale,
        }
        if spec.invalid is not None:
            entry["invalid"] = spec.invalid
        registers[quantity.value] = entry
    data: dict[str, Any] = {
        "name": model.name,
        "numbering": model.numbering.value,
        "max_gap": model.max_gap,
        "registers": registers,
    }
    if model.notes:
        data["notes"] = model.notes
    return data


def model_from_data(data: Mapping[str, Any], *, where: str = "") -> MeterModel:
    """A custom model from plain data (schema-checked by the caller); ConfigError if unusable."""
    try:
        registers = {
            Quantity(key): RegisterSpec(
                address=entry["address"],
                format=RegisterFormat(entry.get("format", RegisterFormat.FLOAT32)),
                word_order=WordOrder(entry.get("word_order", WordOrder.BIG)),
                register_type=RegisterType(entry.get("type", RegisterType.HOLDING)),
                scale=float(entry.get("scale", 1.0)),
                invalid=entry.get("invalid"),
            )
            for key, entry in data["registers"].items()
        }
        return make_model(
            str(data["name"]),
            registers,
            numbering=Numbering(data.get("numbering", Numbering.REGISTER)),
            max_gap=int(data.get("max_gap", 0)),
            notes=str(data.get("notes", "")),
        )
    except ConfigError as err:
        raise ConfigError(f"{where}{err}") from None
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"{where}invalid model: {err}") from None


def _error_location(document: Any, path: Iterable[str | int]) -> str:
    """`models[2] ('Name') registers.current_l1.format` for a path into the file."""
    parts = list(path)
    if not parts:
        return "file"
    head = ""
    if len(parts) >= 2 and parts[0] == "models" and isinstance(parts[1], int):  # noqa: PLR2004
        head = f"models[{parts[1]}]{_entry_name(document, parts[1])}"
        parts = parts[2:]
    tail = ""
    for part in parts:
        if isinstance(part, int):
            tail += f"[{part}]"
        else:
            tail += f".{part}" if tail else part
    return " ".join(text for text in (head, tail) if text)


def _sort_key(path: Iterable[str | int]) -> list[tuple[int, int, str]]:
    return [(0, p, "") if isinstance(p, int) else (1, 0, p) for p in path]


def parse_models_json(text: str | bytes) -> list[MeterModel]:
    """Parse and check a models file; ConfigError names the entry and field that is wrong."""
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        raise ConfigError(f"not a JSON file: {err}") from None
    if isinstance(document, list):
        document = {"format": FILE_FORMAT, "version": FILE_VERSION, "models": document}
    errors = sorted(_VALIDATOR.iter_errors(document), key=lambda e: _sort_key(e.absolute_path))
    if errors:
        first = errors[0]
        if isinstance(first.instance, dict) and first.validator == "required":
            missing = [f for f in first.validator_value if f not in first.instance]
            message = f"{', '.join(missing)} is required"
        else:
            message = first.message
        raise ConfigError(f"{_error_location(document, first.absolute_path)}: {message}")
    models: list[MeterModel] = []
    seen: set[str] = set()
    for index, data in enumerate(document["models"]):
        label = f"models[{index}] ({data['name']!r}): "
        model = model_from_data(data, where=label)
        if model.name.casefold() in seen:
            raise ConfigError(f"{label}the name appears twice in the file")
        seen.add(model.name.casefold())
        models.append(model)
    return models


def _entry_name(document: Any, index: int) -> str:
    try:
        name = document["models"][index].get("name")
    except (AttributeError, IndexError, KeyError, TypeError):
        return ""
    return f" ({name!r})" if isinstance(name, str) else ""


def dump_models_json(models: Iterable[MeterModel]) -> str:
    """The export file for `models`."""
    document = {
        "format": FILE_FORMAT,
        "version": FILE_VERSION,
        "models": [model_to_data(model) for model in models],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


class ModelRegistry:
    """Built-in models (read-only) and custom models (add, replace, remove, import, export)."""

    def __init__(self, custom: Iterable[MeterModel] = ()) -> None:
        self._custom: dict[str, MeterModel] = {}
        for model in custom:
            self.add(model)

    @property
    def builtin(self) -> dict[str, MeterModel]:
        """The product's models, by name."""
        return dict(BUILTIN_MODELS)

    @property
    def custom(self) -> dict[str, MeterModel]:
        """The installer's models, by name."""
        return dict(self._custom)

    def names(self) -> list[str]:
        """Every model name: built-in first, then custom in the order they were added."""
        return [*BUILTIN_MODELS, *self._custom]

    def get(self, name: str) -> MeterModel:
        """The model called `name`; ConfigError when there is none."""
        model = BUILTIN_MODELS.get(name) or self._custom.get(name)
        if model is None:
            raise ConfigError(f"unknown meter model {name!r}")
        return model

    def __contains__(self, name: object) -> bool:
        return name in BUILTIN_MODELS or name in self._custom

    def _check_name(self, name: str, *, replace: bool) -> None:
        folded = name.casefold()
        if any(folded == builtin.casefold() for builtin in BUILTIN_MODELS):
            raise ConfigError(f"{name!r} is the name of a built-in model")
        if not replace and any(folded == other.casefold() for other in self._custom):
            raise ConfigError(f"a custom model called {name!r} already exists")

    def add(self, model: MeterModel, *, replace: bool = False) -> None:
        """Add a custom model (validated); `replace` allows overwriting one of the same name."""
        if model.builtin:
            raise ConfigError(f"{model.name!r} is a built-in model")
        model = make_model(
            model.name,
            model.registers,
            numbering=model.numbering,
            max_gap=model.max_gap,
            notes=model.notes,
        )
        self._check_name(model.name, replace=replace)
        self._custom[model.name] = model

    def remove(self, name: str) -> MeterModel:
        """Remove a custom model; ConfigError for a built-in or unknown name."""
        if name in BUILTIN_MODELS:
            raise ConfigError(f"{name!r} is a built-in model and cannot be removed")
        try:
            return self._custom.pop(name)
        except KeyError:
            raise ConfigError(f"unknown custom model {name!r}") from None

    def export_json(self, names: Iterable[str] | None = None) -> str:
        """Export all custom models, or the ones named (ConfigError for an unknown name)."""
        if names is None:
            models = list(self._custom.values())
        else:
            models = []
            for name in names:
                if name not in self._custom:
                    raise ConfigError(f"unknown custom model {name!r}")
                models.append(self._custom[name])
        return dump_models_json(models)

    def import_json(self, text: str | bytes, *, replace: bool = False) -> list[MeterModel]:
        """Add every model of a file, or none: ConfigError leaves the registry unchanged.

        A name already used by a custom model is an error unless `replace` is set; a built-in
        name or a name repeated inside the file always is.
        """
        models = parse_models_json(text)
        for index, model in enumerate(models):
            try:
                self._check_name(model.name, replace=replace)
            except ConfigError as err:
                raise ConfigError(f"models[{index}] ({model.name!r}): {err}") from None
        for model in models:
            existing = next(
                (n for n in self._custom if n.casefold() == model.name.casefold()), None
            )
            if existing is not None:
                del self._custom[existing]
            self._custom[model.name] = model
        return models

    def to_data(self) -> list[dict[str, Any]]:
        """Custom models as plain data, for persistence."""
        return [model_to_data(model) for model in self._custom.values()]

    @classmethod
    def from_data(cls, data: Iterable[Mapping[str, Any]]) -> ModelRegistry:
        """A registry from persisted data (ConfigError if it does not validate)."""
        text = json.dumps(list(data))
        return cls(parse_models_json(text))
