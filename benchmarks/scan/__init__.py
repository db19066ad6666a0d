"""Scan benchmark: certmon `full` against sslyze, certmon `expiry` against a bare handshake loop."""
