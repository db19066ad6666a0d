"""The handshake probe: one TLS handshake (after STARTTLS where the target needs it) that records the chain as
the server presents it, the negotiated parameters and the stapled OCSP response."""
