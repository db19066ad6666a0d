"""The evaluator's service layer: evaluating one observation under its resolved policy, and finding the
intermediates a server did not send (the known-intermediates cache, then AIA)."""
