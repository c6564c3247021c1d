"""Contract-exact simulator of the bank partner API, with fault injection."""
