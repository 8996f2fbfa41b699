"""The initializer manifest matches the installed Keras, and what the API
accepts of it builds."""

import json

import numpy as np
import pytest
from pydantic import ValidationError

from service import initializers
from worker import manifest
from worker.engine.common import make_initializer
from worker.engine.plan import InitializerRef

NON_DEFAULT = {
    "constant": {"value": 0.3},
    "random_uniform": {"minval": -0.5, "maxval": 0.25},
    "random_normal": {"mean": 0.1, "stddev": 0.5},
    "truncated_normal": {"stddev": 0.2},
    "orthogonal": {"gain": 2.0},
    "identity": {"gain": 0.5},
    "variance_scaling": {
        "scale": 2.0,
        "mode": "fan_avg",
        "distribution": "untruncated_normal",
    },
}


def test_the_committed_manifest_is_what_the_installed_keras_gives() -> None:
    committed = json.loads(initializers.MANIFEST_PATH.read_text())

    assert committed == manifest.manifest()
    assert initializers.MANIFEST_PATH.read_text() == manifest.render()


def test_every_parameter_with_a_default_is_in_the_manifest() -> None:
    assert initializers.PARAMETERS["random_normal"] == {
        "mean": initializers.Parameter("mean", "float", 0.0),
        "stddev": initializers.Parameter("stddev", "float", 0.05),
    }
    assert set(initializers.PARAMETERS["variance_scaling"]) == {
        "scale",
        "mode",
        "distribution",
    }
    assert initializers.ALIASES == {
        "uniform": "random_uniform",
        "normal": "random_normal",
    }


@pytest.mark.parametrize(("name", "config"), sorted(NON_DEFAULT.items()))
def test_accepted_configs_build_kernels(name: str, config: dict[str, float]) -> None:
    checked = initializers.check_config(name, config)
    initializer = make_initializer(InitializerRef(name, checked), seed=3)

    values = np.asarray(initializer(shape=(4, 3), dtype="float32"))

    assert values.shape == (4, 3)
    assert np.isfinite(values).all()


@pytest.mark.parametrize(
    ("name", "config", "label"),
    [
        ("random_normal", {"stddev": 0.5}, "random_normal(stddev=0.5)"),
        ("normal", {"stddev": 0.05}, "normal"),
        ("he_normal", {}, "he_normal"),
        (
            "variance_scaling",
            {"mode": "fan_avg", "scale": 1.0},
            "variance_scaling(mode=fan_avg)",
        ),
        (
            "random_uniform",
            {"minval": -1, "maxval": 1},
            "random_uniform(minval=-1.0, maxval=1.0)",
        ),
    ],
)
def test_labels_name_what_differs_from_the_defaults(
    name: str, config: dict[str, float], label: str
) -> None:
    assert initializers.label(name, initializers.check_config(name, config)) == label


def test_every_bad_key_is_reported_at_its_own_place() -> None:
    with pytest.raises(ValidationError) as raised:
        initializers.check_config("random_normal", {"stddev": "0.5", "seed": 1})

    errors = raised.value.errors()
    assert [error["loc"] for error in errors] == [("stddev",), ("seed",)]
    assert all("Received:" in error["msg"] for error in errors)


@pytest.mark.parametrize("name", sorted(initializers.PARAMETERS))
def test_the_shapes_refused_are_exactly_those_keras_cannot_fill(name: str) -> None:
    def fills(shape: tuple[int, ...]) -> bool:
        try:
            make_initializer(InitializerRef(name), seed=1)(shape=shape)
        except ValueError:
            return False
        return True

    assert all(fills(shape) for shape in [(4, 1), (1, 4), (4, 4), (4, 8), (8, 3)])
    assert initializers.fits_rank(name, 2)
    assert fills((3,)) == initializers.fits_rank(name, 1)


@pytest.mark.parametrize(("key", "choices"), sorted(initializers.CHOICES.items()))
def test_every_choice_offered_builds(
    key: tuple[str, str], choices: tuple[str, ...]
) -> None:
    name, parameter = key
    for choice in choices:
        checked = initializers.check_config(name, {parameter: choice})
        initializer = make_initializer(InitializerRef(name, checked), seed=1)
        assert np.asarray(initializer(shape=(4, 2))).shape == (4, 2)
