"""The files probe: certificate files (PEM, DER, password-less PKCS#12) and directories of them."""
