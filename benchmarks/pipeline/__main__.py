"""`python -m benchmarks.pipeline`: run the pipeline benchmark."""

from benchmarks.pipeline.run import main

main()
