"""Process plumbing every pipeline process shares: logs, metrics, probes, settings, batching.

Nothing here knows about applications or streams; ``lendo-api`` and
``lendo-poller`` (and their tools) build on it. The bank simulator does not:
it stands in for an outside service and shares no code with the pipeline.
"""
