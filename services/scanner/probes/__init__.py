"""Every probe of the scanner, one subpackage per kind, and the registry that maps each kind to its probe.

`handshake` reads the chain a TLS endpoint presents; `files` reads certificate files; `enumeration` finds
versions, cipher suites and groups with hand-built ClientHellos; `starttls` holds the plaintext dialogue of
each protocol that talks before TLS. Nothing is imported here, so reading files never loads the network probes.
"""
