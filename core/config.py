"""Frozen, JSON-primitive configuration dataclasses with validation and UI hints.

Every model, simulator and training configuration in the project derives from :class:`Config`:

* fields are JSON primitives (bool, int, float, str, tuples of those, or nested ``Config``);
* ``Literal[...]`` fields are checked in ``__post_init__``; ``min``/``max`` metadata bound numbers;
* :meth:`Config.from_dict` rejects unknown keys (a typo never silently becomes a default);
* ``help``/``min``/``max``/``step`` metadata drive the forms the app generates.

Use :func:`param` to declare a field::

    @dataclass(frozen=True)
    class FlowConfig(Config):
        transforms: int = param(3, help="Number of autoregressive transforms", min=1, max=12)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin

from core.errors import GPSError

__all__ = ["Config", "param", "field_specs", "FieldSpec"]


def param(default: Any, *, help: str = "", min: float | None = None, max: float | None = None,
          step: float | None = None, advanced: bool = False) -> Any:
    """Declare a config field with a default and UI metadata (help text, bounds, step)."""
    meta = {"help": help, "min": min, "max": max, "step": step, "advanced": advanced}
    if isinstance(default, (list, dict, set)):
        raise TypeError("config defaults must be immutable JSON primitives or tuples")
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class FieldSpec:
    """Description of one config field, for generated forms and documentation."""

    name: str
    kind: str                     # "bool" | "int" | "float" | "str" | "choice" | "tuple" | "config"
    default: Any
    help: str
    choices: tuple | None
    min: float | None
    max: float | None
    step: float | None
    advanced: bool


@dataclass(frozen=True)
class Config:
    """Base class: frozen dataclass with validation, dict round-trip and a stable hash."""

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            tp = hints[f.name]
            value = _coerce(type(self).__name__, f.name, tp, value)
            object.__setattr__(self, f.name, value)
            lo, hi = f.metadata.get("min"), f.metadata.get("max")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if lo is not None and value < lo:
                    raise GPSError(f"value {value!r} is below the minimum", source=type(self).__name__,
                                   field=f.name, expected=f">= {lo}", found=repr(value))
                if hi is not None and value > hi:
                    raise GPSError(f"value {value!r} is above the maximum", source=type(self).__name__,
                                   field=f.name, expected=f"<= {hi}", found=repr(value))
        self.validate()

    def validate(self) -> None:
        """Cross-field checks; subclasses override and raise :class:`GPSError`."""

    # -- dict / JSON round trip -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Config):
                v = v.to_dict()
            elif isinstance(v, tuple):
                v = [x.to_dict() if isinstance(x, Config) else (list(x) if isinstance(x, tuple) else x)
                     for x in v]
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None = None, **overrides: Any):
        """Build from a dict, rejecting unknown keys; nested configs may be given as dicts."""
        data = dict(data or {})
        data.update(overrides)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise GPSError(f"unknown setting(s) {', '.join(unknown)}", source=cls.__name__,
                           expected=f"one of {', '.join(sorted(names))}")
        return cls(**data)

    def replace(self, **changes: Any):
        return self.from_dict(self.to_dict(), **changes)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def config_hash(self, length: int = 12) -> str:
        """Stable hash of the configuration (used in cache file names and provenance)."""
        text = type(self).__name__ + ":" + self.to_json()
        return hashlib.sha256(text.encode()).hexdigest()[:length]

    @classmethod
    def fields_spec(cls) -> list[FieldSpec]:
        return field_specs(cls)


def field_specs(cls: type[Config]) -> list[FieldSpec]:
    """Describe the fields of a config class (type, default, help, bounds) for form generation."""
    hints = _hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        choices = None
        origin = get_origin(tp)
        if origin is Literal:
            kind, choices = "choice", get_args(tp)
        elif isinstance(tp, type) and issubclass(tp, Config):
            kind = "config"
        elif origin is tuple:
            kind = "tuple"
        elif tp is bool:
            kind = "bool"
        elif tp is int:
            kind = "int"
        elif tp is float:
            kind = "float"
        else:
            kind = "str"
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        md = f.metadata
        specs.append(FieldSpec(f.name, kind, default, md.get("help", ""), choices, md.get("min"),
                               md.get("max"), md.get("step"), md.get("advanced", False)))
    return specs


# ---------------------------------------------------------------------------------------------------
_HINT_CACHE: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINT_CACHE:
        import sys
        module = sys.modules.get(cls.__module__)
        _HINT_CACHE[cls] = typing.get_type_hints(cls, globalns=vars(module) if module else None)
    return _HINT_CACHE[cls]


def _coerce(owner: str, name: str, tp: Any, value: Any) -> Any:
    """Check ``value`` against the annotation ``tp``; convert lists to tuples and ints to floats."""
    origin = get_origin(tp)
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise GPSError("invalid choice", source=owner, field=name,
                           expected=" | ".join(map(repr, allowed)), found=repr(value))
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(owner, name, a, value)
            except GPSError as e:
                errors.append(str(e))
        raise GPSError("value does not match any allowed type", source=owner, field=name,
                       expected=str(tp), found=repr(value))
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise GPSError("expected a list", source=owner, field=name, expected=str(tp), found=repr(value))
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(owner, name, args[0], v) for v in value)
        if len(args) != len(value):
            raise GPSError("wrong number of items", source=owner, field=name,
                           expected=f"{len(args)} items", found=f"{len(value)} items")
        return tuple(_coerce(owner, name, a, v) for a, v in zip(args, value))
    if isinstance(tp, type) and issubclass(tp, Config):
        if isinstance(value, tp):
            return value
        if isinstance(value, dict):
            return tp.from_dict(value)
        raise GPSError("expected a nested settings block", source=owner, field=name,
                       expected=tp.__name__, found=repr(value))
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GPSError("expected a number", source=owner, field=name, expected="float", found=repr(value))
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float)
                                                                       and value.is_integer())):
            raise GPSError("expected an integer", source=owner, field=name, expected="int", found=repr(value))
        return int(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise GPSError("expected true/false", source=owner, field=name, expected="bool", found=repr(value))
        return value
    if tp is str:
        if not isinstance(value, str):
            raise GPSError("expected text", source=owner, field=name, expected="str", found=repr(value))
        return value
    return value
