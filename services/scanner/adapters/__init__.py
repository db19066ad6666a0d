"""The scanner's outside world: TLS and STARTTLS probes, certificate files, and its PostgreSQL tables."""
