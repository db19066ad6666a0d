"""The long fault run: `python -m benchmarks.faults --minutes 30` (the harness is tests/support/faults)."""
