"""Configuration files checked by a schema (pydantic), one line per problem: the file, the key
path, what was expected and what was found."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from edgeseg.errors import ConfigError

# what each kind of pydantic error expected, in a user's words
_EXPECTED = {
    "bool_type": "true or false", "int_type": "a whole number", "float_type": "a number",
    "string_type": "text", "dict_type": "a mapping of key: value", "list_type": "a list",
    "tuple_type": "a list", "int_from_float": "a whole number", "bool_parsing": "true or false",
    "float_parsing": "a number", "int_parsing": "a whole number", "literal_error": None,
    "missing": "a value", "model_type": "a mapping of setting: value",
    "model_attributes_type": "a mapping of setting: value",
}


def describe(error: Mapping[str, Any]) -> str:
    """One pydantic error as `key.path: expected X, found Y`."""
    where = ".".join(str(part) for part in error["loc"]) or "(top level)"
    kind, found = error["type"], error.get("input")
    if kind == "extra_forbidden":
        return f"unknown settings {where}"
    if kind == "missing":
        return f"{where}: missing"
    if kind == "value_error":  # our own validators' messages say it all
        return f"{where}: {error['msg'].removeprefix('Value error, ')}"
    if kind not in _EXPECTED or _EXPECTED[kind] is None:  # a constraint: pydantic's words say what it wants
        message = str(error["msg"])
        return f"{where}: {message[:1].lower() + message[1:]}, found {found!r}"
    expected = _EXPECTED[kind]
    if kind.endswith(("_type", "_parsing")) and kind.startswith("bool"):
        return f"{where} must be true or false, not {found!r}"
    return f"{where}: expected {expected}, found {found!r}"


def config_error(error: ValidationError, path: str | Path | None = None, fix: str | None = None) -> ConfigError:
    """A ValidationError as the ConfigError the CLI prints on one line (unknown keys together)."""
    errors = error.errors()
    unknown = [".".join(str(part) for part in e["loc"]) for e in errors if e["type"] == "extra_forbidden"]
    problems = [f"unknown settings {', '.join(unknown)}"] if unknown else []
    problems += [describe(e) for e in errors if e["type"] != "extra_forbidden"]
    return ConfigError("; ".join(problems), path, fix)


def read_yaml_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping; anything else (unreadable, binary, a list) is one
    ConfigError naming the file."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read {what} ({e.strerror})", path) from None
    except UnicodeDecodeError:
        raise ConfigError(f"not a text file, so not a {what}", path, "give a YAML file") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"not valid YAML ({' '.join(str(e).split())})", path) from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"a {what} is a mapping of setting: value, not {type(values).__name__}", path)
    return values
