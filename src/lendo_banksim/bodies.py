"""The bank's request and response bodies, as the partner's API documents them."""

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, StrictStr

FinalStatus = Literal["completed", "rejected"]
JobStatus = Literal["pending", "completed", "rejected"]


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True)


class ApplicationIn(_Body):
    """``POST /api/applications``. Names must be JSON strings; unknown fields are ignored."""

    id: UUID
    first_name: StrictStr
    last_name: StrictStr


class ApplicationCreated(_Body):
    """The ``201`` answer: the application echoed back, with its job pending."""

    id: UUID
    first_name: str
    last_name: str
    status: Literal["pending"] = "pending"


class JobOut(_Body):
    """``GET /api/jobs``: the job assessing one application."""

    id: UUID
    application_id: UUID
    status: JobStatus


class ErrorOut(_Body):
    """Every refusal of the bank."""

    error: str
