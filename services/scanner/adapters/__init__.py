"""The scanner's stores (see `services.scanner.ports`): PostgreSQL tables for targets, discovery sweeps and the
endpoints they found, and their in-memory twins in `memory`."""
