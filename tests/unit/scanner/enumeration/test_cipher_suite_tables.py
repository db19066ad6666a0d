"""The IANA cipher-suite registry table: complete, unique, and with the attributes grading relies on."""

from services.scanner.domain.tls_names import OPENSSL_TO_IANA
from services.scanner.probes.enumeration.groups import dh_group_name, ffdhe_primes
from services.scanner.probes.enumeration.iana import BY_CODE, BY_NAME, SUITES


def test_registry_has_every_assigned_suite_once() -> None:
    """Several hundred rows, no duplicate code or name, SCSVs left out."""
    assert len(SUITES) > 350
    assert len(BY_CODE) == len(SUITES) == len(BY_NAME)
    assert 0x00FF not in BY_CODE and 0x5600 not in BY_CODE


def test_tls13_and_sslv2_suites_are_present() -> None:
    """TLS 1.3 suites 0x1301-0x1305 and the seven SSLv2 cipher kinds are in the table."""
    assert [BY_CODE[code].name for code in range(0x1301, 0x1306)] == [
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_AES_128_CCM_SHA256",
        "TLS_AES_128_CCM_8_SHA256",
    ]
    assert sum(1 for suite in SUITES if suite.versions == "ssl2") == 7


def test_every_openssl_suite_has_a_registry_row() -> None:
    """Every suite the handshake probe can name is also one the enumeration can offer."""
    assert all(name in BY_NAME for name in OPENSSL_TO_IANA.values())


def test_attributes_of_representative_suites() -> None:
    """Forward secrecy, AEAD, export and bits match the suites' definitions."""
    ecdhe = BY_NAME["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
    assert (ecdhe.kex, ecdhe.auth, ecdhe.bits, ecdhe.aead, ecdhe.forward_secrecy, ecdhe.versions) == (
        "ECDHE",
        "RSA",
        128,
        True,
        True,
        "tls12",
    )
    rsa = BY_NAME["TLS_RSA_WITH_3DES_EDE_CBC_SHA"]
    assert (rsa.bits, rsa.aead, rsa.forward_secrecy, rsa.versions) == (168, False, False, "legacy")
    export = BY_NAME["TLS_RSA_EXPORT_WITH_RC4_40_MD5"]
    assert (export.export, export.bits) == (True, 40)
    assert BY_NAME["TLS_DH_anon_WITH_AES_128_CBC_SHA"].auth == "anon"
    assert BY_NAME["TLS_NULL_WITH_NULL_NULL"].versions == "none"


def test_rfc7919_primes_are_recognised() -> None:
    """The computed ffdhe primes start with the RFC's digits; any other prime is a custom `dh` group."""
    primes = {name: prime for prime, name in ffdhe_primes().items()}
    assert hex(primes["ffdhe2048"]).startswith("0xffffffffffffffffadf85458a2bb4a9a")
    assert primes["ffdhe2048"].bit_length() == 2048
    assert dh_group_name(primes["ffdhe3072"].to_bytes(384, "big")) == "ffdhe3072"
    assert dh_group_name((2**1024 - 105).to_bytes(128, "big")) == "dh"
