"""`python -m services.notifier`: the same as `certmon notifier` (one way to run a service)."""

import sys

from services.cli import main

if __name__ == "__main__":
    sys.exit(main(["notifier", *sys.argv[1:]]))
