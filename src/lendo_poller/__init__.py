"""Bank poller: one asyncio actor per pending application, until the bank decides."""
