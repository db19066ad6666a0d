"""`python -m services.scanner`: the same as `certmon scanner` (one way to run a service)."""

import sys

from services.cli import main

if __name__ == "__main__":
    sys.exit(main(["scanner", *sys.argv[1:]]))
