"""`python -m benchmarks.scan`: run the scan benchmark."""

from benchmarks.scan.run import main

main()
