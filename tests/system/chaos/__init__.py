"""The chaos suite: real processes broken on purpose; see docs/reliability.md."""
