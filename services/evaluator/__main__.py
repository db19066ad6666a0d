"""`python -m services.evaluator`: the same as `certmon evaluator` (one way to run a service)."""

import sys

from services.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluator", *sys.argv[1:]]))
