"""certmon's five services, the commands that compose them (`services.cli`), and the order they start in."""

#: Downstream first, so every queue exists before anything publishes to it. Kept here, not in the composition
#: root, so the command line can list the services without importing them (`certmon check` starts fast).
START_ORDER = ("reporter", "notifier", "alarmer", "evaluator", "scanner")
