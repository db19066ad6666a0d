"""`certmon check`'s exit codes, the Nagios plugin convention: 0 ok, 1 warning, 2 critical, 3 unknown."""

EXIT_OK, EXIT_WARNING, EXIT_CRITICAL, EXIT_UNKNOWN = 0, 1, 2, 3
