"""The Redis keys and consumer groups of one system."""

from dataclasses import dataclass

API_GROUP = "api"
"""Consumer group of ``lendo-api`` on the update stream."""

POLLER_GROUP = "pollers"
"""Consumer group of ``lendo-poller`` on the submission stream."""


@dataclass(frozen=True)
class StreamNames:
    """The Redis keys of one system; the prefix lets two systems share a Redis."""

    prefix: str = "lendo:"

    @property
    def applications(self) -> str:
        """Submissions: applications waiting for the bank's decision (API → poller)."""
        return f"{self.prefix}applications"

    @property
    def updates(self) -> str:
        """Final statuses from the bank (poller → API)."""
        return f"{self.prefix}updates"

    @property
    def dead_letters(self) -> str:
        """Entries that could not be processed, kept for inspection and replay."""
        return f"{self.prefix}dead-letters"

    @property
    def generation(self) -> str:
        """A key the API writes once per Redis lifetime: missing means Redis lost its data."""
        return f"{self.prefix}generation"

    def heartbeat(self, group: str, consumer: str) -> str:
        """The key that exists, with a short TTL, while ``consumer`` of ``group`` is alive."""
        return f"{self.prefix}consumers:{group}:{consumer}"
