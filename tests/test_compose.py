"""docker-compose.yml (Docker does not run here): it parses, every service has
a health check, and its commands name real entry points of this package."""

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.cli import parser
from service.config import Settings
from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def initlab_commands(service: dict[str, Any]) -> list[list[str]]:
    command = service["command"]
    if command[:2] == ["sh", "-c"]:
        parts = [shlex.split(part) for part in command[2].split("&&")]
    else:
        parts = [command]
    return [[w for w in part if w != "exec"] for part in parts]


def test_declares_the_four_services_each_with_a_health_check() -> None:
    assert set(SERVICES) == {"postgres", "redis", "api", "worker"}
    for name, service in SERVICES.items():
        assert service["healthcheck"]["test"], name


@pytest.mark.parametrize("name", ["api", "worker"])
def test_commands_are_real_cli_entry_points(name: str) -> None:
    commands = initlab_commands(SERVICES[name])

    for command in commands:
        assert command[0] == "initlab"
        parser().parse_args(command[1:])


def test_api_runs_migrations_before_serving() -> None:
    commands = initlab_commands(SERVICES["api"])

    assert [command[1] for command in commands] == ["migrate", "serve"]


def test_environment_names_real_settings() -> None:
    fields = {f"INITLAB_{name.upper()}" for name in Settings.model_fields}

    for name in ("api", "worker"):
        assert set(SERVICES[name]["environment"]) <= fields
        assert SERVICES[name]["environment"]["INITLAB_DATABASE_URL"].startswith(
            "postgresql+psycopg://"
        )


def test_services_wait_for_their_dependencies() -> None:
    assert SERVICES["api"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    assert SERVICES["worker"]["depends_on"]["api"]["condition"] == "service_healthy"


def test_the_image_installs_this_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install ." in dockerfile
    for folder in ("service", "worker", "migrations"):
        assert f"COPY {folder} ./{folder}" in dockerfile
        assert Path(ROOT / folder).is_dir()
