"""Run the whole system on one machine: embedded Redis, bank simulator, API, poller."""
