"""`python -m services.scanner`: run the scanner service alone."""

import asyncio

from services.scanner.bootstrap import run_standalone

if __name__ == "__main__":
    asyncio.run(run_standalone())
