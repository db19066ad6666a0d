"""The reporter's adapters: history in PostgreSQL, the report bucket, the HTTP server, estate metrics, and the
renderer (Jinja2 templates read from this package turn a status report into the bytes that leave the process)."""
