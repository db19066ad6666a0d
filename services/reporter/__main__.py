"""`python -m services.reporter`: the same as `certmon reporter` (one way to run a service)."""

import sys

from services.cli import main

if __name__ == "__main__":
    sys.exit(main(["reporter", *sys.argv[1:]]))
