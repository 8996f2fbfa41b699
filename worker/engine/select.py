"""Which engine trains a pack, and on which device."""

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from worker.engine.keras_engine import train_keras
from worker.engine.packed import supports, train_packed
from worker.engine.plan import EpochSink, RunPlan, SplitData, TrainingPlan

Engine = Callable[[TrainingPlan, Sequence[RunPlan], SplitData, EpochSink], None]

_configured = False


def configure_tensorflow() -> None:
    """Once per process, before TensorFlow touches a GPU: grow GPU memory as
    needed instead of taking it all, so that several workers can share one."""
    global _configured
    if _configured:
        return
    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)
    _configured = True


def choose_engine(engine: str, plan: TrainingPlan) -> tuple[str, Engine]:
    if engine == "keras":
        return "keras", train_keras
    reason = supports(plan)
    if reason is None:
        return "packed", train_packed
    if engine == "packed":
        raise ValueError(f"the packed engine cannot train this plan: {reason}")
    return "keras", train_keras


def device_scope(device: str) -> contextlib.AbstractContextManager[Any]:
    if device == "cpu":
        scope: contextlib.AbstractContextManager[Any] = tf.device("/CPU:0")
        return scope
    return contextlib.nullcontext()
