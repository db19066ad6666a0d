"""The names of the RabbitMQ objects a test's own `AmqpBus` declares, under a prefix unique to the test, so tests
share one broker without meeting."""


def bus_names(prefix: str) -> dict[str, str]:
    """`AmqpBus` keyword arguments naming its events exchange, dead-letter exchange and dead-letter queue."""
    return {
        "exchange": f"{prefix}.events",
        "dead_letter_exchange": f"{prefix}.dlx",
        "dead_letter_queue": f"{prefix}.dlq",
    }
