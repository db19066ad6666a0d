"""The scanner's PostgreSQL tables: configured targets, discovery sweeps and the endpoints they found."""
