"""What the benchmarks share: load, clients, profiles, the hello-world baseline and the report."""
