"""`python -m services.reporter`: run the reporter service alone."""

import asyncio

from services.reporter.bootstrap import run_standalone

if __name__ == "__main__":
    asyncio.run(run_standalone())
