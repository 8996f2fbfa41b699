"""Statistics across repeats: per-epoch aggregates and the final ranking."""

from typing import Any

from pydantic import BaseModel, ConfigDict

SUMMARY_EXAMPLE: Any = {
    "count": 20,
    "mean": 0.871,
    "std": 0.021,
    "min": 0.830,
    "max": 0.905,
    "ci_low": 0.861,
    "ci_high": 0.881,
}


class Stat(BaseModel):
    count: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    ci_low: float | None
    ci_high: float | None

    model_config = ConfigDict(json_schema_extra={"examples": [SUMMARY_EXAMPLE]})


class EpochAggregate(BaseModel):
    epoch: int
    metrics: dict[str, Stat]


class InitializerAggregate(BaseModel):
    initializer: str
    runs: int
    epochs: list[EpochAggregate]


class Aggregate(BaseModel):
    experiment_id: str
    confidence: float
    initializers: list[InitializerAggregate]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "experiment_id": "0b7e9d2c-5f4a-4e3b-9c1d-2e3f4a5b6c7d",
                    "confidence": 0.95,
                    "initializers": [
                        {
                            "initializer": "he_normal",
                            "runs": 20,
                            "epochs": [
                                {
                                    "epoch": 4,
                                    "metrics": {"val_accuracy": SUMMARY_EXAMPLE},
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    )


class Ranked(BaseModel):
    rank: int | None
    """Equal means share a rank; every repeat diverged ranks last; null while
    no repeat has finished."""
    initializer: str
    final: Stat
    diverged: int
    """Finished repeats whose final value is not a number (a diverged run):
    `final` and the comparisons leave them out."""
    first_place_share: float
    """How often it ranks first when repeats are resampled."""


class PairwiseComparison(BaseModel):
    a: str
    b: str
    difference: float | None
    """Mean of a minus mean of b."""
    hedges_g: float | None
    welch_t: float | None
    p_value: float | None


class TargetReached(BaseModel):
    initializer: str
    reached: int
    repeats: int
    epochs_to_target: Stat
    """Over the repeats that reached it: the first epoch (0-based) at target."""


class ExperimentSummary(BaseModel):
    experiment_id: str
    metric: str
    higher_is_better: bool
    runs_counted: int
    ranking: list[Ranked]
    comparisons: list[PairwiseComparison]
    target: float | None
    time_to_target: list[TargetReached]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "experiment_id": "0b7e9d2c-5f4a-4e3b-9c1d-2e3f4a5b6c7d",
                    "metric": "val_accuracy",
                    "higher_is_better": True,
                    "runs_counted": 100,
                    "ranking": [
                        {
                            "rank": 1,
                            "initializer": "lecun_uniform",
                            "final": SUMMARY_EXAMPLE,
                            "diverged": 0,
                            "first_place_share": 0.71,
                        }
                    ],
                    "comparisons": [
                        {
                            "a": "lecun_uniform",
                            "b": "he_normal",
                            "difference": 0.12,
                            "hedges_g": 1.9,
                            "welch_t": 6.1,
                            "p_value": 0.00001,
                        }
                    ],
                    "target": 0.85,
                    "time_to_target": [
                        {
                            "initializer": "lecun_uniform",
                            "reached": 18,
                            "repeats": 20,
                            "epochs_to_target": SUMMARY_EXAMPLE,
                        }
                    ],
                }
            ]
        }
    )
