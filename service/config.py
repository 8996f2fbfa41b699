"""One settings object for the API, the CLI and the workers."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

BANKNOTE_URL = (
    "https://archive.ics.uci.edu/ml/machine-learning-databases/00267/"
    "data_banknote_authentication.txt"
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INITLAB_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".initlab")
    database_url: str | None = None
    broker_url: str | None = None
    data_dir: Path | None = None
    cache_dir: Path | None = None
    banknote_url: str = BANKNOTE_URL
    download_timeout_seconds: float = 30.0

    queue_prefix: str = ""
    cpu_pack_size: int = Field(default=1000, ge=1)
    gpu_pack_size: int = Field(default=20000, ge=1)
    max_attempts: int = Field(default=3, ge=1)
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    stale_after_seconds: float = Field(default=60.0, gt=0)
    sweep_interval_seconds: float = Field(default=15.0, gt=0)
    unpublished_grace_seconds: float = Field(default=30.0, ge=0)
    broker_visibility_timeout_seconds: int = Field(default=3600, ge=1)

    max_runs: int = Field(default=10_000, ge=1)
    max_run_epochs: int = Field(default=2_000_000, ge=1)
    max_parameters: int = Field(default=1_000_000, ge=1)
    max_upload_bytes: int = Field(default=20_000_000, ge=1)

    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'initlab.sqlite'}"

    @property
    def embedded_broker(self) -> bool:
        return not self.broker_url

    @property
    def broker_folder(self) -> Path:
        return self.home / "broker"

    @property
    def resolved_cache_dir(self) -> Path:
        return self.cache_dir or self.home / "cache"

    def queue_name(self, device: str) -> str:
        return f"{self.queue_prefix}{device}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
