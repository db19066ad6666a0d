"""The reporter's pure rules: the status report of the estate (`report`) and the read models of the API (`views`).

Nothing in this package reads a clock, a file or the network.
"""
