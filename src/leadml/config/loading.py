"""Reading a YAML file into a frozen pydantic model, with every problem at its line.

A wrong key, a bad value or a column named twice is reported with its place in the
file (``sample.yaml:14 dataset.columns.numeric[2]``), with the near spelling or the section
a misplaced key belongs under, so the fix is one edit away.
"""

from __future__ import annotations

import difflib
import hashlib
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from leadml.errors import ConfigError


class Frozen(BaseModel):
    """A config section: unknown keys refused, values frozen, and a yes/no never read as
    a number (pydantic reads ``capacity: true`` as a capacity of 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_yes_no_for_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, info in cls.model_fields.items():
                value = data.get(info.alias or name)
                if isinstance(value, bool) and _numeric(info.annotation):
                    raise ValueError(f"{name}: {str(value).lower()} is a yes/no, not a number; "
                                     "give a number")
        return data


def _numeric(annotation) -> bool:
    """A number type (or a number or None), not also a yes/no."""
    kinds = set(typing.get_args(annotation)) or {annotation}
    return bool(kinds & {int, float}) and bool not in kinds


MAX_YAML_NODES = 20_000  # far above any real config; a YAML bomb expands to billions


def _expanded_size(root: yaml.Node, what: str) -> int:
    """How many nodes the document holds once every alias is expanded, counted without
    expanding (each node once, memoised). Refuses recursive aliases and YAML bombs, which
    load fast but stall anything that walks them (pydantic, the line-number walk)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise ConfigError(f"{what} uses a recursive YAML alias (an anchor that contains "
                              f"itself) at line {node.start_mark.line + 1}; write the value "
                              "out instead")
        open_nodes.add(key)
        children = [n for pair in node.value for n in pair] \
            if isinstance(node, yaml.MappingNode) else \
            node.value if isinstance(node, yaml.SequenceNode) else []
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_YAML_NODES:
                break
        open_nodes.discard(key)
        sizes[key] = total
        return total

    total = size(root)
    if total > MAX_YAML_NODES:
        raise ConfigError(f"{what} expands to more than {MAX_YAML_NODES:,} values through its "
                          "YAML aliases (a 'YAML bomb'?); write the values out instead")
    return total


def line_numbers(text: str, what: str = "the file") -> dict[tuple, int]:
    """Map each key path of a YAML document to its 1-based line."""
    lines: dict[tuple, int] = {}

    def walk(node: Any, path: tuple) -> None:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                walk(value, (*path, key.value))
                lines[(*path, key.value)] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        _expanded_size(root, what)  # bounds the walk below
        walk(root, ())
    return lines


def _models_in(annotation) -> list[type[BaseModel]]:
    """The config sections an annotation holds (``X``, ``X | None``, ``list[X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _section(model: type[BaseModel], path: tuple) -> type[BaseModel] | None:
    """The section (config model) at key ``path`` of ``model``; None if not one."""
    for key in path:
        if isinstance(key, int):  # an item of a list of sections
            continue
        field = model.model_fields.get(key)
        found = _models_in(field.annotation) if field is not None else []
        if len(found) != 1:
            return None
        model = found[0]
    return model


def _homes(model: type[BaseModel], key: str, path: tuple = ()) -> list[str]:
    """Every place (dotted path) in ``model``'s sections where ``key`` is a key."""
    out = [".".join(path) or "the top level"] if key in model.model_fields else []
    for name, field in model.model_fields.items():
        for inner in _models_in(field.annotation):
            out += _homes(inner, key, (*path, name))
    return out


def _unknown_key(model: type[BaseModel], loc: tuple) -> str:
    """What to say of the unknown key at ``loc``: a near spelling of a key of its section,
    or the sections the key belongs to (it was indented under the wrong one).

    >>> from leadml.config import Rules, TrainConfig
    >>> _unknown_key(TrainConfig, ("model", "max_fit_lead"))
    "unknown key: did you mean 'max_fit_leads'?"
    >>> _unknown_key(Rules, ("budget", "minimum"))
    "unknown key: did you mean 'min'?"
    >>> print(_unknown_key(TrainConfig, ("dataset", "horizon_days")))  # doctest: +ELLIPSIS
    unknown key here: 'horizon_days' belongs under dataset.target or dataset.outcomes (...)
    """
    key, section = loc[-1], _section(model, loc[:-1])
    if isinstance(key, str) and section is not None:
        near = difflib.get_close_matches(key, list(section.model_fields), n=1, cutoff=0.75) \
            or [f for f in section.model_fields if len(f) >= 3 and key.startswith(f)][-1:]
        if near:
            return f"unknown key: did you mean '{near[0]}'?"
        homes = [h for h in _homes(model, key) if h != ".".join(map(str, loc[:-1]))]
        if homes:
            return (f"unknown key here: '{key}' belongs under {' or '.join(homes)} (check "
                    "the indentation)")
    return "unknown key (check its spelling and indentation)"


def _describe(error: ValidationError, lines: dict[tuple, int], where: str,
              model: type[BaseModel]) -> str:
    out = []
    for e in error.errors():
        loc = tuple(e["loc"])
        known = loc
        while known and known not in lines:
            known = known[:-1]
        line = lines.get(known, 1)
        dotted = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc)
        dotted = dotted.replace(".[", "[") or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = _unknown_key(model, loc)
        elif e["type"] == "missing":
            parent = ".".join(str(p) for p in known) or "the top level"
            msg = (f"required key is missing: add '{loc[-1]}' under '{parent}' (which starts "
                   f"at line {line})" if known else f"required key is missing: add "
                   f"'{loc[-1]}' at the top level")
        out.append(f"  {where}:{line} {dotted}: {msg}")
    return "\n".join(out)


def load_yaml(path: Path, model: type[BaseModel], what: str, base_fix=None) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} '{path}' does not exist") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} '{path}' cannot be read as UTF-8 text: {exc}") from None
    try:
        lines = line_numbers(text, f"{what} '{path}'")  # first: it refuses bombs
        raw = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{what} '{path}' is nested too deeply to be a leadml config") \
            from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} '{path}' is not valid YAML:\n{exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} '{path}' must be a YAML mapping")
    if base_fix:
        raw = base_fix(raw)
    raw["source"] = str(path.resolve())
    raw["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{what} '{path}' has {exc.error_count()} problem(s):\n"
                          + _describe(exc, lines, path.name, model)) from None
