"""The scanner's service layer: what orchestrates probes, repositories and rules (one observation of a target,
the scheduler loop, the discovery sweeps) and the limiter that keeps scans of one host few."""
