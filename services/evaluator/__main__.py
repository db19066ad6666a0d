"""`python -m services.evaluator`: run the evaluator alone."""

import asyncio

from services.evaluator.bootstrap import run_standalone

if __name__ == "__main__":
    asyncio.run(run_standalone())
