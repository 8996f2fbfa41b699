"""JSON for large bodies whose shape the code guarantees."""

import json
from typing import Any

from fastapi.responses import Response

from service.errors import json_safe


def dumps(content: Any) -> str:
    """Compact JSON; non-finite floats become null (walked only when present)."""
    try:
        return json.dumps(content, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(json_safe(content), separators=(",", ":"))


class FastJSONResponse(Response):
    """Plain dicts and lists serialized once, without model validation, for
    history pages and aggregates (their response models document the shape)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content).encode()
