"""Hand-built ClientHello probes: protocol versions, cipher suites by elimination, server preference and
key-exchange groups, read from the server's first flight without completing a handshake (the `full` profile).
"""

from services.scanner.probes.enumeration.connection import Endpoint
from services.scanner.probes.enumeration.enumerate import Enumeration, enumerate_endpoint
from services.scanner.probes.enumeration.full import complete_full

__all__ = ["Endpoint", "Enumeration", "complete_full", "enumerate_endpoint"]
