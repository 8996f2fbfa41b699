"""Request and response bodies for experiments."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from service import catalog, initializers, optimizers
from service.db.models import RunStatus

StrictInt = Annotated[int, Field(strict=True)]
StrictFloat = Annotated[float, Field(strict=True)]
StrictBool = Annotated[bool, Field(strict=True)]


def _storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # JSON can spell half of a surrogate pair, which no database stores.
        raise ValueError("text may not contain unpaired surrogates") from None
    return value


def _trimmed(value: str) -> str:
    if value != value.strip():
        raise ValueError("a label may not start or end with whitespace")
    return value


Text = Annotated[str, AfterValidator(_storable)]
Label = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100),
    AfterValidator(_storable),
    AfterValidator(_trimmed),
]


def _one_of(kind: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(
            f"unknown {kind}; expected one of {', '.join(allowed)}. Received: {value!r}"
        )
    return value


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


DATASET_ONLY_FIELDS = ("label", "features", "one_hot", "impute")


class DatasetSpec(Spec):
    """A built-in dataset by `source`, or an uploaded one by `id`."""

    source: str | None = Field(
        default=None,
        description="A built-in dataset; uci:banknote when neither source nor id.",
    )
    id: str | None = Field(
        default=None,
        pattern="^[0-9a-f]{64}$",
        description="An uploaded dataset: the SHA-256 that POST /v1/datasets gave.",
    )
    label: Text | None = Field(
        default=None, min_length=1, description="Uploaded: the column to predict."
    )
    features: list[Text] | None = Field(
        default=None,
        min_length=1,
        max_length=10_000,
        description="Uploaded: the input columns; every other column when omitted.",
    )
    one_hot: list[Text] | None = Field(
        default=None,
        max_length=10_000,
        description="Uploaded: feature columns to one-hot encode (text or codes).",
    )
    impute: Literal["refuse", "mean"] | None = Field(
        default=None,
        description=(
            "Uploaded: refuse (default) missing feature values, or fill them with "
            "the mean of the training rows."
        ),
    )
    standardize: Literal["train", "all", "none"] = Field(
        default="train",
        description=(
            "train: scaler fitted on the training split; all: fitted on every row, "
            "as the classic lesson did; none: raw features."
        ),
    )
    stratify: bool = Field(
        default=False,
        description="Keep each class's share of rows in both splits (classification).",
    )

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str | None) -> str | None:
        return (
            None
            if value is None
            else _one_of("dataset source", value, catalog.DATASETS)
        )

    @model_validator(mode="after")
    def _source_or_id(self) -> "DatasetSpec":
        if self.id is not None:
            if self.source is not None:
                raise ValueError(
                    "give either 'source' (a built-in dataset) or 'id' (an uploaded "
                    f"one), not both. Received: source={self.source!r}, id={self.id!r}"
                )
            if self.label is None:
                raise ValueError(
                    "an uploaded dataset needs 'label', the column to predict"
                )
            self.one_hot = self.one_hot or []
            self.impute = self.impute or "refuse"
            return self
        for name in DATASET_ONLY_FIELDS:
            if getattr(self, name) is not None:
                raise ValueError(
                    f"{name!r} applies to an uploaded dataset ('id'), not to a "
                    f"built-in source. Received: {name}={getattr(self, name)!r}"
                )
        if self.source is None:
            self.source = "uci:banknote"
        return self

    @model_serializer(mode="wrap")
    def _without_unused(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        return {key: value for key, value in data.items() if value is not None}

    @property
    def name(self) -> str:
        return self.source or f"dataset {self.id}"


def _name_to_object(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class InitializerSpec(Spec):
    name: str
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="Constructor arguments, as GET /v1/initializers lists them.",
    )
    label: Label | None = None

    @field_validator("name")
    @classmethod
    def _known_initializer(cls, value: str) -> str:
        return _one_of("initializer", value, catalog.INITIALIZERS)

    @field_validator("config")
    @classmethod
    def _known_parameters(
        cls, value: dict[str, Any], info: ValidationInfo
    ) -> dict[str, Any]:
        name = info.data.get("name")
        if name is None:
            return value
        return initializers.check_config(name, value)

    @model_validator(mode="after")
    def _default_label(self) -> "InitializerSpec":
        if self.label is None:
            self.label = initializers.label(self.name, self.config)
        return self


InitializerIn = Annotated[InitializerSpec, BeforeValidator(_name_to_object)]


class LayerSpec(Spec):
    units: StrictInt = Field(ge=1, le=4096)
    activation: str = "linear"
    kernel_initializer: InitializerIn | None = Field(
        default=None,
        description="Overrides the experiment's initializer variant for this layer.",
    )
    bias_initializer: InitializerIn | None = Field(
        default=None, description="zeros when omitted."
    )
    use_bias: StrictBool = True

    @field_validator("activation")
    @classmethod
    def _known_activation(cls, value: str) -> str:
        return _one_of("activation", value, catalog.ACTIVATIONS)


class ModelSpec(Spec):
    layers: list[LayerSpec] = Field(
        default_factory=lambda: [LayerSpec(units=1, activation="sigmoid")],
        min_length=1,
        max_length=16,
    )


REFERENCE_INITIALIZERS = ["zeros", "uniform", "normal", "he_normal", "lecun_uniform"]

REFERENCE_EXAMPLE: Any = {
    "name": "banknote initializers",
    "dataset": {"source": "uci:banknote"},
    "model": {"layers": [{"units": 1, "activation": "sigmoid"}]},
    "initializers": REFERENCE_INITIALIZERS,
    "repeats": 5,
    "optimizer": "rmsprop",
    "loss": "binary_crossentropy",
    "metrics": ["accuracy"],
    "batch_size": 16,
    "epochs": 5,
    "test_size": 0.3,
    "split_seed": 42,
    "seed": 0,
    "engine": "auto",
    "device": "auto",
    "diagnostics": True,
}


CONFIGURED_EXAMPLE: Any = {
    "name": "he on hidden layers, glorot on the output",
    "model": {
        "layers": [
            {"units": 8, "activation": "relu"},
            {
                "units": 1,
                "activation": "sigmoid",
                "kernel_initializer": "glorot_uniform",
            },
        ]
    },
    "initializers": [
        "he_normal",
        {"name": "random_normal", "config": {"stddev": 0.5}},
        {
            "name": "variance_scaling",
            "config": {"scale": 2.0, "mode": "fan_avg"},
            "label": "wide fan_avg",
        },
    ],
    "repeats": 10,
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "metrics": ["accuracy", "auc"],
    "epochs": 20,
    "diagnostics": False,
}


class ExperimentCreate(Spec):
    """An initializer experiment; every omitted field takes the reference value."""

    name: Text = Field(default="banknote initializers", min_length=1, max_length=200)
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    initializers: list[InitializerIn] = Field(
        default_factory=lambda: [
            InitializerSpec(name=name) for name in REFERENCE_INITIALIZERS
        ],
        min_length=1,
        max_length=64,
    )
    repeats: StrictInt = Field(default=1, ge=1, le=1000)
    optimizer: Annotated[
        str | dict[str, Any], BeforeValidator(optimizers.check_optimizer)
    ] = Field(
        default="rmsprop",
        description=(
            'A name, or {"name": ..., <parameters>} such as '
            '{"name": "adam", "learning_rate": 0.01}.'
        ),
    )
    loss: str = "binary_crossentropy"
    metrics: list[str] = Field(default_factory=lambda: ["accuracy"], max_length=8)
    batch_size: StrictInt = Field(default=16, ge=1, le=65536)
    epochs: StrictInt = Field(default=5, ge=1, le=10000)
    test_size: StrictFloat = Field(default=0.3, gt=0, lt=1)
    split_seed: StrictInt = Field(default=42, ge=0, le=2**32 - 1)
    seed: StrictInt = Field(default=0, ge=0, le=2**63 - 1)
    engine: Literal["auto", "packed", "keras"] = Field(
        default="auto",
        description=(
            "packed: every run of a pack in one compiled graph; keras: one "
            "model.fit per run; auto: packed whenever it applies."
        ),
    )
    device: Literal["auto", "cpu", "gpu"] = Field(
        default="auto",
        description="gpu: only GPU workers take the runs; cpu: only CPU; auto: any.",
    )
    diagnostics: StrictBool = Field(
        default=True,
        description=(
            "Record per-layer weight, gradient and activation statistics "
            "(layer{i}_*) with each epoch's metrics."
        ),
    )

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, value: str) -> str:
        return _one_of("loss", value, catalog.LOSSES)

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str], info: ValidationInfo) -> list[str]:
        for metric in value:
            _one_of("metric", metric, catalog.METRICS)
        if len(set(value)) != len(value):
            raise ValueError(f"a metric is named twice. Received: {value!r}")
        loss = info.data.get("loss")
        for metric in value:
            losses = catalog.METRIC_LOSSES.get(metric)
            if loss is not None and losses is not None and loss not in losses:
                raise ValueError(
                    f"{metric} is measured with loss {' or '.join(losses)}, not "
                    f"{loss!r}. Received: {value!r}"
                )
        return value

    @field_validator("initializers")
    @classmethod
    def _unique_labels(cls, value: list[InitializerSpec]) -> list[InitializerSpec]:
        seen: set[str] = set()
        for variant in value:
            assert variant.label is not None
            if variant.label in seen:
                raise ValueError(
                    "two variants share a label; give each a distinct 'label'. "
                    f"Received: {variant.label!r}"
                )
            seen.add(variant.label)
        return value

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={"examples": [REFERENCE_EXAMPLE, CONFIGURED_EXAMPLE]},
    )


ExperimentStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class Progress(BaseModel):
    runs_total: int
    runs_done: int
    epochs_done: int
    epochs_total: int
    runs_by_status: dict[RunStatus, int]


EXPERIMENT_EXAMPLE: Any = {
    "id": "0b7e9d2c-5f4a-4e3b-9c1d-2e3f4a5b6c7d",
    "name": "banknote initializers",
    "status": "running",
    "created_at": "2026-12-04T15:24:38Z",
    "runs_total": 25,
    "progress": {
        "runs_total": 25,
        "runs_done": 10,
        "epochs_done": 53,
        "epochs_total": 125,
        "runs_by_status": {
            "queued": 14,
            "running": 1,
            "succeeded": 10,
            "failed": 0,
            "cancelled": 0,
        },
    },
    "spec": {
        **REFERENCE_EXAMPLE,
        "dataset": {
            "source": "uci:banknote",
            "standardize": "train",
            "stratify": False,
        },
        "model": {
            "layers": [
                {
                    "units": 1,
                    "activation": "sigmoid",
                    "kernel_initializer": None,
                    "bias_initializer": None,
                    "use_bias": True,
                }
            ]
        },
        "initializers": [
            {"name": n, "config": {}, "label": n} for n in REFERENCE_INITIALIZERS
        ],
    },
}


class RerunCreate(Spec):
    """A rerun: the same spec with fresh seeds, optionally more repeats."""

    repeats: StrictInt | None = Field(default=None, ge=1, le=1000)
    seed: StrictInt | None = Field(
        default=None, ge=0, le=2**63 - 1, description="default: a fresh one"
    )


class ExperimentPublic(BaseModel):
    id: str
    parent_id: str | None = None
    name: str
    status: ExperimentStatus
    created_at: datetime
    runs_total: int
    progress: Progress
    spec: dict[str, Any]

    model_config = ConfigDict(json_schema_extra={"examples": [EXPERIMENT_EXAMPLE]})


class ExperimentsPublic(BaseModel):
    data: list[ExperimentPublic]
    count: int
    limit: int
    offset: int

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"data": [EXPERIMENT_EXAMPLE], "count": 1, "limit": 20, "offset": 0}
            ]
        }
    )
