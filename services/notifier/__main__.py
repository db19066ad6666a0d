"""`python -m services.notifier`: run the notifier alone."""

import asyncio

from services.notifier.bootstrap import run_standalone

if __name__ == "__main__":
    asyncio.run(run_standalone())
