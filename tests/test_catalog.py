"""The names the API accepts all mean something to the installed Keras."""

import keras
import pytest

from service import catalog
from worker.engine.common import LEGACY_ALIASES, initializer_class, make_initializer
from worker.engine.plan import InitializerRef


@pytest.mark.parametrize("name", catalog.INITIALIZERS)
def test_initializer_names_resolve_to_classes_the_engines_build(name: str) -> None:
    initializer = make_initializer(InitializerRef(name), seed=1)

    assert isinstance(initializer, keras.initializers.Initializer)


def test_legacy_aliases_match_keras() -> None:
    for alias, canonical in LEGACY_ALIASES.items():
        assert initializer_class(alias) is initializer_class(canonical)
        assert initializer_class(alias) is type(keras.initializers.get(alias))


def test_every_builtin_initializer_is_offered() -> None:
    builtin = {
        name
        for name in dir(keras.initializers)
        if name.islower() and not name.startswith("_")
    } - {"get", "serialize", "deserialize", "stft"}

    assert builtin <= set(catalog.INITIALIZERS)


@pytest.mark.parametrize("name", catalog.ACTIVATIONS)
def test_activation_names_resolve(name: str) -> None:
    assert callable(keras.activations.get(name))


@pytest.mark.parametrize("name", catalog.OPTIMIZERS)
def test_optimizer_names_resolve(name: str) -> None:
    assert isinstance(keras.optimizers.get(name), keras.optimizers.Optimizer)


@pytest.mark.parametrize("name", catalog.LOSSES)
def test_loss_names_resolve(name: str) -> None:
    assert callable(keras.losses.get(name))


@pytest.mark.parametrize("name", catalog.INITIALIZERS)
def test_every_initializer_builds_and_trains_the_reference_model(name: str) -> None:
    import numpy as np

    from worker.engine.keras_engine import train_keras
    from worker.engine.plan import LayerPlan, RunPlan, SplitData, TrainingPlan

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    data = SplitData(x[:30], y[:30], x[30:], y[30:])
    plan = TrainingPlan(
        layers=(LayerPlan(1, "sigmoid"),),
        optimizer="rmsprop",
        loss="binary_crossentropy",
        metrics=("accuracy",),
        batch_size=16,
        epochs=1,
    )
    seen: list[dict[str, float]] = []

    train_keras(
        plan,
        [RunPlan(seed=1, kernel_initializer=InitializerRef(name))],
        data,
        lambda _run, _epoch, metrics: seen.append(metrics) is None,
    )

    assert len(seen) == 1
    assert set(seen[0]) == {"loss", "accuracy", "val_loss", "val_accuracy"}


@pytest.mark.parametrize("name", catalog.OPTIMIZERS)
def test_the_api_knows_which_optimizers_the_packed_engine_takes(name: str) -> None:
    from worker.engine.packed import supports
    from worker.engine.plan import LayerPlan, TrainingPlan

    plan = TrainingPlan(
        layers=(LayerPlan(1, "sigmoid"),),
        optimizer=name,
        loss="binary_crossentropy",
        metrics=("accuracy",),
        batch_size=16,
        epochs=1,
    )

    assert (supports(plan) is None) == (name in catalog.PACKED_OPTIMIZERS)


@pytest.mark.parametrize("loss", catalog.LOSSES)
def test_the_packed_engine_takes_every_loss_the_api_accepts(loss: str) -> None:
    from worker.engine.packed import supports
    from worker.engine.plan import LayerPlan, TrainingPlan

    plan = TrainingPlan(
        layers=(LayerPlan(1, "sigmoid"),),
        optimizer="rmsprop",
        loss=loss,
        metrics=("accuracy",),
        batch_size=16,
        epochs=1,
    )

    assert supports(plan) is None
