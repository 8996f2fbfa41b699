from typing import Any

from fastapi import APIRouter

from service.deps import SessionDep
from service.runs.schemas import RunPublic
from service.runs.service import get_run, to_public

router = APIRouter(prefix="/v1/runs", tags=["runs"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No run has this id"}
}


@router.get("/{run_id}", responses=NOT_FOUND)
def read_run(run_id: str, session: SessionDep) -> RunPublic:
    """One run's status, attempts and final metrics."""
    return to_public(get_run(session, run_id))
