"""The evaluator: turns observations into evaluations (findings, grade, alarm level) under the configured policy.

`evaluate_observation` is the one-off entry point `certmon check` uses; `bootstrap` wires the service.
"""

from services.evaluator.service_layer.evaluate_observation import evaluate_observation

__all__ = ["evaluate_observation"]
