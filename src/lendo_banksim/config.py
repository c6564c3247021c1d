"""What the simulator is told at start: the decision window, the seed and the faults."""

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

Rate = Annotated[float, Field(ge=0, le=1)]
Seconds = Annotated[float, Field(ge=0)]


class Faults(BaseModel):
    """Fault injection, applied to each request on the bank endpoints; changeable at runtime.

    ``slow_rate`` adds latency on top of whatever the answer is. Drop, fail and
    garbage are exclusive outcomes of one request, so their rates share one
    draw and may not add up to more than 1. ``refuse_rate`` is not drawn per
    request but per application, from the seed like its outcome, so a
    refused application is refused again however often it is submitted.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    fail_rate: Rate = Field(default=0.0, description="Share answered with a 5xx.")
    slow_rate: Rate = Field(default=0.0, description="Share delayed by slow_delay.")
    slow_delay: Seconds = Field(
        default=10.0, description="Latency of a slow request; above the client's timeout."
    )
    drop_rate: Rate = Field(
        default=0.0, description="Share whose connection is closed without an answer."
    )
    garbage_rate: Rate = Field(
        default=0.0, description="Share answered 200 with a truncated or non-JSON body."
    )
    refuse_rate: Rate = Field(
        default=0.0,
        description="Share of applications refused as invalid (400, registering nothing) "
        "at every submission; which ones follows from the seed and the id.",
    )

    @model_validator(mode="after")
    def _one_outcome_per_request(self) -> Self:
        if self.drop_rate + self.fail_rate + self.garbage_rate > 1:
            raise ValueError("drop_rate + fail_rate + garbage_rate must not exceed 1")
        return self


class SimConfig(Faults):
    """Everything one simulator starts with; the faults are only the initial ones."""

    min_delay: Seconds = Field(
        default=5.0, description="Earliest decision, in seconds after submission."
    )
    max_delay: Seconds = Field(
        default=20.0, description="Latest decision, in seconds after submission."
    )
    seed: int | None = Field(
        default=None,
        description="Decides every outcome and delay; random at start when not given, "
        "so two runs with the same seed decide each application the same way.",
    )

    @field_validator("max_delay")
    @classmethod
    def _window_not_inverted(cls, max_delay: float, info: ValidationInfo) -> float:
        min_delay = info.data.get("min_delay")
        if min_delay is not None and max_delay < min_delay:
            raise ValueError(f"must not be less than min_delay ({min_delay})")
        return max_delay

    @property
    def faults(self) -> Faults:
        """The fault fields alone."""
        return Faults.model_validate(self.model_dump(include=set(Faults.model_fields)))
