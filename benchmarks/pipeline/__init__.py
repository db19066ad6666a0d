"""End-to-end benchmark of the production path (five services as processes over RabbitMQ and PostgreSQL)."""
