"""`python -m services.alarmer`: the same as `certmon alarmer` (one way to run a service)."""

import sys

from services.cli import main

if __name__ == "__main__":
    sys.exit(main(["alarmer", *sys.argv[1:]]))
