"""Writes service/initializers.json: each initializer the API offers, with the
parameters, types and defaults of its class in the installed Keras.

Run `python -m worker.manifest` after upgrading Keras; a test keeps the committed
file equal to what this produces.
"""

import inspect
import json
import sys
from pathlib import Path
from typing import Any

import keras

from service import catalog
from worker.engine.common import LEGACY_ALIASES, initializer_class

MANIFEST_PATH = Path(__file__).resolve().parents[1] / "service" / "initializers.json"

# Each run seeds its own instance; the axes only matter for kernels of more
# than two dimensions, and every kernel here is a Dense (inputs, units) matrix.
NOT_CONFIGURABLE = ("seed", "input_axes", "output_axes")

TYPES = {bool: "bool", float: "float", int: "float", str: "string"}


def parameter(param: inspect.Parameter, owner: str) -> dict[str, Any]:
    kind = TYPES.get(type(param.default))
    if kind is None:
        raise ValueError(
            f"cannot tell the type of {owner}.{param.name} from its default. "
            f"Received: {param.default!r}"
        )
    default = float(param.default) if kind == "float" else param.default
    return {"name": param.name, "type": kind, "default": default}


def describe(name: str) -> dict[str, Any]:
    cls = initializer_class(name)
    signature = inspect.signature(cls.__init__)
    parameters = [
        parameter(param, cls.__name__)
        for param in signature.parameters.values()
        if param.name != "self"
        and param.name not in NOT_CONFIGURABLE
        and param.kind not in {param.VAR_POSITIONAL, param.VAR_KEYWORD}
    ]
    aliases = sorted(
        alias for alias, target in LEGACY_ALIASES.items() if target == name
    )
    return {
        "name": name,
        "class": cls.__name__,
        "aliases": aliases,
        "parameters": parameters,
    }


def manifest() -> dict[str, Any]:
    names = [name for name in catalog.INITIALIZERS if name not in LEGACY_ALIASES]
    return {
        "keras_version": keras.__version__,
        "initializers": [describe(name) for name in names],
    }


def render() -> str:
    return json.dumps(manifest(), indent=2) + "\n"


def main() -> None:
    MANIFEST_PATH.write_text(render())
    sys.stdout.write(f"wrote {MANIFEST_PATH}\n")


if __name__ == "__main__":
    main()
