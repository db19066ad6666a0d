"""The notifier's outside world: SMTP, the console, and the delivery log in PostgreSQL."""
