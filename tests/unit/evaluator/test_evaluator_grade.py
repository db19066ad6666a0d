"""The SSL Labs-style grade: scores, every cap, warnings, A+/A-, trust, and what the grade rests on."""

from services.evaluator.domain.grade import (
    BASIS_CERTIFICATE,
    BASIS_FULL,
    BASIS_NEGOTIATED,
    GradeInputs,
    grade,
    letter,
    total_score,
)
from services.evaluator.domain.protocol import tls_view
from shared.events import KeyInfo, NegotiatedTls, SecurityInfo, TlsFacts

EC256 = KeyInfo(type="EC", bits=256, curve="secp256r1")
RSA2048 = KeyInfo(type="RSA", bits=2048)
MODERN = {
    "TLSv1.2": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"],
    "TLSv1.3": ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"],
}


def full(suites: dict[str, list[str]], key: KeyInfo = EC256, **extra: object) -> SecurityInfo:
    """Grade a full enumeration of these versions and suites."""
    facts = TlsFacts(versions=list(suites), cipher_suites=suites, enumerated=True)
    return grade(GradeInputs(view=tls_view(facts), key=key, **extra))  # type: ignore[arg-type]


def reasons(info: SecurityInfo) -> list[str]:
    """The caps' reasons."""
    return [c.reason for c in info.caps]


def test_modern_server_is_a_plus() -> None:
    """TLS 1.2 + 1.3, AES-128/256 AEAD with ECDHE, EC P-256: score 96, A+, no caps."""
    info = full(MODERN)
    assert (info.protocol_score, info.key_exchange_score, info.cipher_score, info.score) == (100, 100, 90, 96)
    assert (info.grade, info.grade_ignoring_trust, info.caps, info.basis) == ("A+", "A+", [], BASIS_FULL)


def test_rsa_2048_worked_example_scores_93() -> None:
    """The guide's worked example: TLS 1.2+1.3, RSA-2048, AES-128/256 → 30 + 27 + 36 = 93."""
    assert full(MODERN, RSA2048).score == 93


def test_no_tls13_is_a_warning_giving_a_minus() -> None:
    """Only TLS 1.2 (all else perfect): A-, with the warning listed."""
    info = full({"TLSv1.2": MODERN["TLSv1.2"]})
    assert info.grade == "A-"
    assert "warning: TLS 1.3 is not supported" in reasons(info)


def test_sslv2_caps_at_f() -> None:
    """SSLv2 offered is F."""
    assert full({**MODERN, "SSLv2": ["SSL_CK_RC4_128_WITH_MD5"]}).grade == "F"


def test_sslv3_caps_at_b_or_f_when_best() -> None:
    """SSLv3 beside TLS 1.2 caps at B; SSLv3 as the best protocol is F."""
    assert full({**MODERN, "SSLv3": ["TLS_RSA_WITH_AES_128_CBC_SHA"]}).grade == "B"
    assert full({"SSLv3": ["TLS_RSA_WITH_AES_128_CBC_SHA"]}).grade == "F"


def test_tls10_or_tls11_caps_at_b() -> None:
    """TLS 1.0 or 1.1 offered caps at B."""
    info = full({**MODERN, "TLSv1.0": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"]})
    assert info.grade == "B"
    assert "TLS 1.0 or TLS 1.1 is supported" in reasons(info)
    assert full({**MODERN, "TLSv1.1": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"]}).grade == "B"


def test_tls13_only_is_not_capped_and_is_a_plus() -> None:
    """Only TLS 1.3 enumerated, EC P-256: 30 + 30 + 36 = 96, no cap and no "no TLS 1.3" warning, so A+."""
    info = full({"TLSv1.3": MODERN["TLSv1.3"]})
    assert (info.protocol_score, info.key_exchange_score, info.cipher_score, info.score) == (100, 100, 90, 96)
    assert (info.grade, info.grade_ignoring_trust, info.caps) == ("A+", "A+", [])


def test_best_protocol_tls11_or_older_caps_at_c() -> None:
    """TLS 1.0 and 1.1 only: neither TLS 1.2 nor TLS 1.3, so C (below the B of TLS 1.0/1.1 offered)."""
    info = full({"TLSv1.0": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"], "TLSv1.1": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"]})
    assert info.grade == "C"
    assert "neither TLS 1.2 nor TLS 1.3 is supported" in reasons(info)


def test_tls13_beside_tls10_without_tls12_is_not_capped_at_c() -> None:
    """TLS 1.3 and TLS 1.0 without TLS 1.2: only the B of TLS 1.0 offered applies."""
    info = full({"TLSv1.0": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"], "TLSv1.3": MODERN["TLSv1.3"]})
    assert info.grade == "B"
    assert "neither TLS 1.2 nor TLS 1.3 is supported" not in reasons(info)


def test_export_and_null_suites_cap_at_f() -> None:
    """EXPORT or NULL suites are F."""
    assert full({**MODERN, "TLSv1.2": ["TLS_RSA_EXPORT_WITH_RC4_40_MD5", *MODERN["TLSv1.2"]]}).grade == "F"
    assert full({**MODERN, "TLSv1.2": ["TLS_RSA_WITH_NULL_SHA256", *MODERN["TLSv1.2"]]}).grade == "F"


def test_anonymous_key_exchange_caps_at_f() -> None:
    """An unauthenticated (DH_anon) suite offered is F."""
    info = full({**MODERN, "TLSv1.2": [*MODERN["TLSv1.2"], "TLS_DH_anon_WITH_AES_128_GCM_SHA256"]})
    assert info.grade == "F"
    assert "anonymous (unauthenticated) key exchange is supported" in reasons(info)


def test_no_forward_secrecy_caps_at_b() -> None:
    """No suite with ECDHE/DHE at all: B."""
    info = full({"TLSv1.2": ["TLS_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_256_GCM_SHA384"]})
    assert info.grade == "B"
    assert "no forward secrecy" in reasons(info)


def test_rc4_caps_at_c_with_modern_protocols_and_b_otherwise() -> None:
    """RC4 on TLS 1.2 is C; RC4 only on TLS 1.0 is B."""
    assert full({**MODERN, "TLSv1.2": [*MODERN["TLSv1.2"], "TLS_ECDHE_RSA_WITH_RC4_128_SHA"]}).grade == "C"
    info = full({**MODERN, "TLSv1.0": ["TLS_ECDHE_RSA_WITH_RC4_128_SHA"]})
    assert info.grade == "B"
    assert "RC4 is supported" in reasons(info)


def test_3des_with_tls11_or_newer_caps_at_c() -> None:
    """3DES offered under TLS 1.2 is C (SWEET32)."""
    info = full({**MODERN, "TLSv1.2": [*MODERN["TLSv1.2"], "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"]})
    assert info.grade == "C"


def test_small_keys_cap_at_b_and_f() -> None:
    """An RSA key under 2048 bits caps at B; under 1024 bits it is F."""
    assert full(MODERN, KeyInfo(type="RSA", bits=1024)).grade == "B"
    assert full(MODERN, KeyInfo(type="RSA", bits=768)).grade == "F"
    assert full(MODERN, KeyInfo(type="EC", bits=160, curve="secp160r1")).grade == "B"


def test_md5_signature_caps_at_f() -> None:
    """A certificate signed with MD5 is F even ignoring trust."""
    info = full(MODERN, md5_signed=True)
    assert (info.grade, info.grade_ignoring_trust) == ("F", "F")


def test_incomplete_chain_caps_at_b() -> None:
    """A missing intermediate caps at B without being a trust failure."""
    info = full(MODERN, incomplete_chain=True)
    assert (info.grade, info.grade_ignoring_trust) == ("B", "B")


def test_trust_problems_give_f_but_keep_the_grade_ignoring_trust() -> None:
    """A trust problem makes the grade F; grade_ignoring_trust stays A+, and the reason is listed."""
    info = full(MODERN, trust_problems=["the certificate expired 2.0 days ago"])
    assert (info.grade, info.grade_ignoring_trust) == ("F", "A+")
    assert "not trusted: the certificate expired 2.0 days ago" in reasons(info)


def test_lowest_cap_wins() -> None:
    """TLS 1.0 (B) together with 3DES under TLS 1.2 (C) is C."""
    suites = {**MODERN, "TLSv1.0": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"]}
    suites["TLSv1.2"] = [*MODERN["TLSv1.2"], "TLS_RSA_WITH_3DES_EDE_CBC_SHA"]
    assert full(suites).grade == "C"


def test_negotiated_only_grades_what_it_can_and_says_so() -> None:
    """Expiry profile: scores from the negotiated version and suite, no A+ without enumeration, basis stated."""
    facts = TlsFacts(negotiated=NegotiatedTls(version="TLSv1.3", cipher_suite="TLS_AES_256_GCM_SHA384"))
    info = grade(GradeInputs(view=tls_view(facts), key=EC256))
    assert (info.grade, info.score, info.basis) == ("A", 100, BASIS_NEGOTIATED)
    assert any(c.grade == "A" and "profile full" in c.reason for c in info.caps)


def test_negotiated_tls12_without_forward_secrecy() -> None:
    """Negotiated TLS 1.2 with a static-RSA suite: no TLS 1.3 (A-) and no forward secrecy (B) → B."""
    facts = TlsFacts(negotiated=NegotiatedTls(version="TLSv1.2", cipher_suite="TLS_RSA_WITH_AES_128_GCM_SHA256"))
    info = grade(GradeInputs(view=tls_view(facts), key=RSA2048))
    assert info.grade == "B"
    assert {"no forward secrecy", "warning: TLS 1.3 is not supported"} <= set(reasons(info))


def test_negotiated_tls10_implies_no_tls12() -> None:
    """A modern client that ends up on TLS 1.0 means the server has nothing newer: C."""
    facts = TlsFacts(negotiated=NegotiatedTls(version="TLSv1", cipher_suite="ECDHE-RSA-AES128-SHA"))
    info = grade(GradeInputs(view=tls_view(facts), key=RSA2048))
    assert info.grade == "C"
    assert "neither TLS 1.2 nor TLS 1.3 is supported" in reasons(info)
    assert info.protocol_score == 90


def test_certificate_only_grades_the_key() -> None:
    """A certificate file has no handshake: the grade rests on the key alone, and says so."""
    info = grade(GradeInputs(view=tls_view(TlsFacts()), key=RSA2048))
    assert (info.protocol_score, info.cipher_score, info.key_exchange_score) == (None, None, 90)
    assert (info.score, info.grade, info.basis) == (90, "A", BASIS_CERTIFICATE)


def test_weak_dh_group_lowers_key_exchange() -> None:
    """A negotiated 1024-bit finite-field group scores like a 1024-bit key: the weaker of key and group counts."""
    facts = TlsFacts(
        negotiated=NegotiatedTls(
            version="TLSv1.2", cipher_suite="TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", key_exchange_group="ffdhe1024"
        )
    )
    info = grade(GradeInputs(view=tls_view(facts), key=RSA2048))
    assert info.key_exchange_score == 80
    assert info.grade == "B"


def test_score_and_letter_boundaries() -> None:
    """A zero category zeroes the total; letters change at 80, 65, 50, 35 and 20."""
    assert total_score(0, 100, 100) == 0
    assert [letter(s) for s in (80, 79, 65, 64, 50, 49, 35, 34, 20, 19)] == [
        "A",
        "B",
        "B",
        "C",
        "C",
        "D",
        "D",
        "E",
        "E",
        "F",
    ]
