"""Initializer parameters as the installed Keras defines them (read from the
manifest that `python -m worker.manifest` writes), and their checks."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.params import Problem, normalized, type_problem, validation_error

MANIFEST_PATH = Path(__file__).with_name("initializers.json")
MANIFEST: dict[str, Any] = json.loads(MANIFEST_PATH.read_text())


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: Any


PARAMETERS: dict[str, dict[str, Parameter]] = {
    entry["name"]: {param["name"]: Parameter(**param) for param in entry["parameters"]}
    for entry in MANIFEST["initializers"]
}
ALIASES: dict[str, str] = {
    alias: entry["name"]
    for entry in MANIFEST["initializers"]
    for alias in entry["aliases"]
}

# Ranks of tensors an initializer cannot fill (Keras raises when it builds).
UNFIT_RANKS = {"orthogonal": (1,), "identity": (1,)}

# Values Keras takes for its string parameters, by (initializer, parameter).
CHOICES = {
    ("variance_scaling", "mode"): ("fan_in", "fan_out", "fan_avg"),
    ("variance_scaling", "distribution"): (
        "truncated_normal",
        "untruncated_normal",
        "uniform",
    ),
}

POSITIVE = {
    ("random_normal", "stddev"),
    ("truncated_normal", "stddev"),
    ("variance_scaling", "scale"),
    ("orthogonal", "gain"),
    ("identity", "gain"),
}


def canonical(name: str) -> str:
    return str(ALIASES.get(name, name))


def _value_problem(name: str, param: Parameter, value: Any) -> str | None:
    choices = CHOICES.get((name, param.name))
    if choices is not None and value not in choices:
        return f"must be one of {', '.join(choices)}"
    if (name, param.name) in POSITIVE and value <= 0:
        return "must be greater than 0"
    return None


def _range_problem(name: str, config: dict[str, Any]) -> tuple[str, str] | None:
    """random_uniform's interval must not be empty; named at the key given last."""
    if name != "random_uniform":
        return None
    params = PARAMETERS[name]
    low = config.get("minval", params["minval"].default)
    high = config.get("maxval", params["maxval"].default)
    if low < high:
        return None
    key = "maxval" if "maxval" in config else "minval"
    return key, f"minval must be less than maxval ({low!r} >= {high!r})"


def check_config(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """The config with numbers as floats; a ValidationError locating each bad key."""
    name = canonical(name)
    params = PARAMETERS[name]
    problems: list[Problem] = []
    checked: dict[str, Any] = {}
    for key, value in config.items():
        problem = _key_problem(name, params, key, value)
        if problem is not None:
            problems.append((key, value, problem))
            continue
        checked[key] = normalized(params[key].type, value)
    if not problems:
        ranged = _range_problem(name, checked)
        if ranged is not None:
            problems.append((ranged[0], checked[ranged[0]], ranged[1]))
    if problems:
        raise validation_error(name, problems)
    return checked


def _key_problem(
    name: str, params: dict[str, Parameter], key: str, value: Any
) -> str | None:
    if key not in params:
        expected = ", ".join(params) or "none: it takes no parameters"
        return f"unknown parameter of {name}; expected {expected}"
    return type_problem(params[key].type, value) or _value_problem(
        name, params[key], value
    )


def label(name: str, config: dict[str, Any]) -> str:
    """A readable name: the initializer and what differs from its defaults."""
    params = PARAMETERS[canonical(name)]
    changed = [
        f"{key}={_shown(value)}"
        for key, value in config.items()
        if value != params[key].default
    ]
    return f"{name}({', '.join(changed)})" if changed else name


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def fits_rank(name: str, rank: int) -> bool:
    return rank not in UNFIT_RANKS.get(canonical(name), ())


def public() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = MANIFEST["initializers"]
    return entries
