"""The alarmer's adapters: its PostgreSQL schema and repository."""
