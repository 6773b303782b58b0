"""Measuring: workloads (suites), operators and their providers, timing, the resumable runner,
the results schema, rooflines and the run's provenance."""
