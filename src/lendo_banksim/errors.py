"""The bank's refusals, each carrying the exact status and message of the contract.

Clients match on these strings (``"the application ID is already used"`` means
success to a resubmitting poller), so they are copied verbatim from the
partner's API (the ``lendoab/interview-service`` image, documented at its
``/docs``) and must not be reworded.
"""


class BankError(Exception):
    """A refusal the bank answers as ``{"error": message}`` with ``status``."""

    status = 400
    message = ""

    def __init__(self) -> None:
        super().__init__(self.message)


class InvalidPayload(BankError):
    message = "the request payload is not valid."


class ApplicationIdUsed(BankError):
    message = "the application ID is already used"


class ApplicationIdMissing(BankError):
    message = "application_id is missing"


class ApplicationIdNotUuid(BankError):
    message = "application_id is not a valid uuid"


class UnknownApplication(BankError):
    status = 404
    message = "failed to get job, the application_id doesn't exist."
