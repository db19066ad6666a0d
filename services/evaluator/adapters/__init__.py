"""The evaluator's adapters to the outside world (files for the trust store)."""
