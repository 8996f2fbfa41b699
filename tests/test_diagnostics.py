"""Per-layer diagnostics: numpy's numbers on the trained weights, the same in
both engines, off on request, and served as metrics by the API."""

import dataclasses
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.config import Settings, get_settings
from service.experiments.schemas import ExperimentCreate
from tests.helpers import Trainer
from tests.test_packed_engine import (
    DATA_DIR,
    Engine,
    History,
    assert_close,
    history,
    runs_for,
)
from worker.datasets import load_table, split
from worker.engine.common import build_model
from worker.engine.keras_engine import diagnostics, train_keras
from worker.engine.packed import train_packed
from worker.engine.plan import (
    InitializerRef,
    LayerPlan,
    RunPlan,
    SplitData,
    TrainingPlan,
    epoch_order,
)
from worker.planning import training_plan
from worker.runner import execute_pack

ENGINES = [train_keras, train_packed]
ENGINE_IDS = ["keras", "packed"]
BASE_METRICS = {"loss", "accuracy", "val_loss", "val_accuracy"}
HIDDEN = TrainingPlan(
    layers=(LayerPlan(4, "tanh"), LayerPlan(1, "sigmoid")),
    optimizer="rmsprop",
    loss="binary_crossentropy",
    metrics=("accuracy",),
    batch_size=64,
    epochs=2,
)
NUMPY_ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
}


@pytest.fixture(scope="module")
def banknote() -> SplitData:
    table = load_table("uci:banknote", Settings(data_dir=DATA_DIR))
    return split(table, test_size=0.3, split_seed=42, standardize="all")


def hidden(activation: str, **layer: Any) -> TrainingPlan:
    return dataclasses.replace(
        HIDDEN, layers=(LayerPlan(4, activation, **layer), LayerPlan(1, "sigmoid"))
    )


def column(reported: History, run: int, key: str) -> list[float]:
    return [metrics[key] for (index, _), metrics in reported.items() if index == run]


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_zeros_leave_a_hidden_layer_symmetric_and_glorot_does_not(
    banknote: SplitData, engine: Engine, activation: str
) -> None:
    plan = hidden(activation)

    reported = history(engine, plan, runs_for(("zeros", "glorot_uniform")), banknote)

    assert column(reported, 0, "layer0_symmetric") == [1.0, 1.0]
    assert column(reported, 1, "layer0_symmetric") == [0.0, 0.0]
    assert all("layer1_symmetric" not in metrics for metrics in reported.values())


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_a_large_negative_bias_kills_every_relu_unit(
    banknote: SplitData, engine: Engine
) -> None:
    killed = hidden(
        "relu", bias_initializer=InitializerRef("constant", {"value": -100})
    )
    runs = runs_for(("normal",))

    dead = history(engine, killed, runs, banknote)
    alive = history(engine, hidden("relu"), runs, banknote)
    smooth = history(engine, hidden("tanh"), runs, banknote)

    assert column(dead, 0, "layer0_dead_fraction") == [1.0, 1.0]
    assert column(dead, 0, "layer0_act_std") == [0.0, 0.0]
    assert column(dead, 0, "layer0_grad_norm") == [0.0, 0.0]
    assert max(column(alive, 0, "layer0_dead_fraction")) < 1.0
    assert "layer0_dead_fraction" not in smooth[(0, 0)]


def test_statistics_are_numpys_on_the_trained_weights(banknote: SplitData) -> None:
    plan = dataclasses.replace(HIDDEN, layers=(LayerPlan(4, "relu"), *HIDDEN.layers))
    run = RunPlan(seed=3, kernel_initializer=InitializerRef("he_normal"))
    model = build_model(plan, run, banknote.n_features)
    order = epoch_order(run.seed, 0, len(banknote.x_train))
    model.fit(
        banknote.x_train[order],
        banknote.y_train[order],
        batch_size=plan.batch_size,
        shuffle=False,
        verbose=0,
    )

    measured = diagnostics(model, plan, banknote)

    h = banknote.x_train.astype(np.float64)
    outputs = []
    for index, (layer, layer_plan) in enumerate(
        zip(model.layers, plan.layers, strict=True)
    ):
        kernel, bias = (np.asarray(weight, np.float64) for weight in layer.weights)
        h = NUMPY_ACTIVATIONS[layer_plan.activation](h @ kernel + bias)
        outputs.append(h)
        expected = {
            "weight_norm": np.linalg.norm(kernel),
            "weight_std": np.std(kernel),
            "act_mean": np.mean(h),
            "act_std": np.std(h),
        }
        for name, value in expected.items():
            assert measured[f"layer{index}_{name}"] == pytest.approx(value, abs=1e-5)
    assert measured["layer0_dead_fraction"] == np.mean(outputs[0].max(axis=0) <= 0)
    # The output layer's kernel gradient of the mean cross-entropy of a sigmoid
    # is h^T (p - y) / n.
    p, y = outputs[-1][:, 0], banknote.y_train.reshape(-1)
    gradient = outputs[-2].T @ (p - y) / len(y)
    assert measured["layer2_grad_norm"] == pytest.approx(
        np.linalg.norm(gradient), abs=1e-5
    )
    assert set(measured) == {
        *(f"layer{i}_{name}" for i in range(3) for name in expected),
        *(f"layer{i}_grad_norm" for i in range(3)),
        "layer0_dead_fraction",
        "layer0_symmetric",
        "layer1_symmetric",
    }


def test_both_engines_record_the_same_diagnostics(banknote: SplitData) -> None:
    plan = dataclasses.replace(
        HIDDEN,
        layers=(
            LayerPlan(6, "relu6"),
            LayerPlan(3, "hard_sigmoid"),
            LayerPlan(1, "sigmoid"),
        ),
        optimizer="adam",
        batch_size=50,
    )
    runs = runs_for(("he_normal", "zeros", "lecun_uniform"))

    expected = history(train_keras, plan, runs, banknote)
    actual = history(train_packed, plan, runs, banknote)

    assert_close(expected, actual)
    per_layer = {"weight_norm", "weight_std", "grad_norm", "act_mean", "act_std"}
    assert set(actual[(0, 0)]) == BASE_METRICS | {
        *(f"layer{i}_{name}" for i in range(3) for name in per_layer),
        "layer0_dead_fraction",
        "layer1_dead_fraction",
        "layer0_symmetric",
        "layer1_symmetric",
    }


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_diagnostics_off_records_no_layer_metrics(
    banknote: SplitData, engine: Engine
) -> None:
    plan = dataclasses.replace(hidden("relu"), epochs=1, diagnostics=False)

    reported = history(engine, plan, runs_for(("normal",)), banknote)

    assert set(reported[(0, 0)]) == BASE_METRICS


def test_the_spec_option_reaches_the_plan_and_survives_a_round_trip() -> None:
    default = ExperimentCreate().model_dump(mode="json")
    off = ExperimentCreate(diagnostics=False).model_dump(mode="json")
    stored_before_the_option = {
        key: value for key, value in default.items() if key != "diagnostics"
    }

    assert default["diagnostics"] is True
    assert ExperimentCreate.model_validate(off).model_dump(mode="json") == off
    assert training_plan(default).diagnostics is True
    assert training_plan(off).diagnostics is False
    assert training_plan(stored_before_the_option).diagnostics is True
    with pytest.raises(ValidationError, match="diagnostics"):
        ExperimentCreate.model_validate({"diagnostics": "yes"})


@pytest.mark.integration
def test_history_and_aggregate_serve_the_diagnostics(client: TestClient) -> None:
    settings = get_settings()
    trainer = Trainer(settings, ["zeros", "he_normal"], epochs=2, repeats=2)
    execute_pack(trainer.experiment_id, trainer.run_ids, settings)
    url = f"/v1/experiments/{trainer.experiment_id}"

    page = client.get(f"{url}/history", params={"metrics": "layer0_weight_norm"})
    aggregate = client.get(f"{url}/aggregate").json()

    points = page.json()["points"]
    assert len(points) == 8
    assert all(set(point["metrics"]) == {"layer0_weight_norm"} for point in points)
    assert all(point["metrics"]["layer0_weight_norm"] > 0 for point in points)
    for variant in aggregate["initializers"]:
        last = variant["epochs"][1]["metrics"]
        assert last["layer0_weight_norm"]["count"] == 2
        assert last["layer0_grad_norm"]["count"] == 2
        assert "layer0_act_mean" in last


def test_a_diverged_layer_has_no_dead_count_or_symmetry_flag() -> None:
    from worker.engine.diagnostics import layer_metrics

    kernels = [np.array([[[np.nan, 1.0], [0.5, 0.5]], [[1.0, 1.0], [0.5, 0.5]]])]
    biases = [np.zeros((2, 2))]
    summaries = np.array([[[np.nan, np.nan, np.nan, 0.0]], [[0.1, 0.2, 0.3, 0.5]]])

    broken, fine = layer_metrics(["relu"], kernels, biases, summaries)

    assert np.isnan(broken["layer0_dead_fraction"])
    assert np.isnan(broken["layer0_symmetric"])
    assert fine["layer0_dead_fraction"] == 0.5
    assert fine["layer0_symmetric"] == 1.0
