"""The test suite's PKI is the demo's: one builder serves both (see `services/demo/pki.py`)."""

from services.demo.pki import NOW, Issued, ec_key, make_ca, make_leaf, rsa_key, write_chain

__all__ = ["NOW", "Issued", "ec_key", "make_ca", "make_leaf", "rsa_key", "write_chain"]
