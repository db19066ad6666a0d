"""The scanner's pure rules: probe limits, schedules, which probes a target needs, how TLS facts are named, and
discovery's sweeps. No I/O and no clock here: every time and every policy is an argument."""
