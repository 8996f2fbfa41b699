"""What an engine needs to train runs, as plain data (no TensorFlow here)."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from service.seeding import derive_seed

__all__ = ["derive_seed"]

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class InitializerRef:
    """A Keras initializer by name with its constructor arguments (no seed)."""

    name: str
    config: dict[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.config.items()))))


@dataclass(frozen=True)
class LayerPlan:
    """A Dense layer; its own initializers override the run's variant."""

    units: int
    activation: str
    use_bias: bool = True
    kernel_initializer: InitializerRef | None = None
    bias_initializer: InitializerRef | None = None


@dataclass(frozen=True)
class TrainingPlan:
    """Everything that the runs of one experiment share."""

    layers: tuple[LayerPlan, ...]
    optimizer: str | Mapping[str, Any]
    loss: str
    metrics: tuple[str, ...]
    batch_size: int
    epochs: int
    diagnostics: bool = True


@dataclass(frozen=True)
class RunPlan:
    """One run: one initializer variant, one seed."""

    seed: int
    kernel_initializer: InitializerRef
    bias_initializer: InitializerRef = InitializerRef("zeros")


@dataclass(frozen=True)
class SplitData:
    x_train: FloatArray
    y_train: FloatArray
    x_val: FloatArray
    y_val: FloatArray

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


EpochSink = Callable[[int, int, dict[str, float]], bool]
"""Called as (run index in the pack, 0-based epoch, metrics) after each epoch.

Returns False when that run must stop (cancelled, or its lease was lost).
"""


def epoch_order(seed: int, epoch: int, n_rows: int) -> npt.NDArray[np.int64]:
    """The order in which a run visits the training rows in one epoch."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1, epoch]))
    return rng.permutation(n_rows)
