"""The scanner: schedules targets, probes TLS/STARTTLS endpoints and certificate files, publishes observations.

`services.scanner.service_layer.observe.observe` is the one-off entry point (used by `certmon check`);
`bootstrap` wires the service. Nothing is imported here, so a check of certificate files never loads the network
probes.
"""
