"""TensorFlow stays out of the API process and the worker's main process."""

import subprocess
import sys

PROBE = """
import sys
{imports}
heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
print(",".join(heavy))
"""


def loaded_after(imports: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(imports=imports)],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_the_api_never_imports_tensorflow() -> None:
    imports = (
        "from fastapi.testclient import TestClient\n"
        "from service.app import create_app\n"
        "TestClient(create_app()).get('/openapi.json')\n"
        "import service.cli, service.demo, service.embedded, service.queue"
    )
    assert loaded_after(imports) == ""


def test_the_worker_main_process_never_imports_tensorflow() -> None:
    assert loaded_after("import worker.tasks, worker.sweeper, worker.leases") == ""
