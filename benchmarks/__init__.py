"""On-demand benchmarks; each writes its figures to docs/performance.md."""
