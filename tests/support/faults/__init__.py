"""The fault harness (issue 18): the services as processes through faults, then the books. `tests/faults` runs
it short in CI; `python -m benchmarks.faults` runs it long."""
