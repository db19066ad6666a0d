"""The five services, in start order: downstream first, so every queue exists before anything publishes to it."""

START_ORDER = ("reporter", "notifier", "alarmer", "evaluator", "scanner")
