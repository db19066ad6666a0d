"""The reporter's adapters: history in PostgreSQL, the report bucket, the HTTP server."""
