"""`python -m services.alarmer`: run the alarmer alone."""

import asyncio

from services.alarmer.bootstrap import run_standalone

if __name__ == "__main__":
    asyncio.run(run_standalone())
