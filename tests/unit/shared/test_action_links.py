"""Signed acknowledge links: they name an alarm and a recipient, expire, and any change breaks them."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from shared.action_links import AckLink, ActionLinkSigner, InvalidLink, link_secret_key
from shared.settings import Settings

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
LINK = AckLink("4f1c6a0e-0000-4000-8000-000000000001", "alice@example.com", NOW + timedelta(days=7))


def test_a_signed_link_verifies_to_what_was_signed() -> None:
    """The token round-trips the alarm, the recipient and the expiry (to the second)."""
    signer = ActionLinkSigner(b"k" * 32)
    assert signer.verify(signer.sign(LINK), now=NOW) == LINK


def test_an_expired_link_is_refused_on_both_sides_of_the_boundary() -> None:
    """Valid one second before its expiry, refused at it."""
    signer = ActionLinkSigner(b"k" * 32)
    token = signer.sign(LINK)
    assert signer.verify(token, now=LINK.expires_at - timedelta(seconds=1)) == LINK
    with pytest.raises(InvalidLink) as caught:
        signer.verify(token, now=LINK.expires_at)
    assert caught.value.reason == "expired"


@pytest.mark.parametrize("where", [0, 10, -1])
def test_an_altered_token_is_refused(where: int) -> None:
    """Changing any character of the payload or the signature breaks it."""
    signer = ActionLinkSigner(b"k" * 32)
    token = list(signer.sign(LINK))
    token[where] = "A" if token[where] != "A" else "B"
    with pytest.raises(InvalidLink) as caught:
        signer.verify("".join(token), now=NOW)
    assert caught.value.reason == "altered"


def test_a_token_signed_with_another_key_is_refused() -> None:
    """A link from another installation (or a forged one) is not honoured."""
    token = ActionLinkSigner(b"other-key-0123456789").sign(LINK)
    with pytest.raises(InvalidLink):
        ActionLinkSigner(b"k" * 32).verify(token, now=NOW)


@pytest.mark.parametrize("token", ["", "x" * 5000, "no-dot-here"])
def test_garbage_is_refused(token: str) -> None:
    """Empty, oversized or shapeless tokens are refused."""
    with pytest.raises(InvalidLink):
        ActionLinkSigner(b"k" * 32).verify(token, now=NOW)


def test_the_key_comes_from_settings_else_is_generated_once_in_the_data_dir(tmp_path: Path) -> None:
    """CERTMON_LINK_SECRET wins; without it one key is generated, kept (0600) and reused by the next process."""
    configured = Settings(link_secret=SecretStr("s3cret-from-the-environment"), data_dir=tmp_path)
    assert link_secret_key(configured) == b"s3cret-from-the-environment"
    generated = link_secret_key(Settings(data_dir=tmp_path))
    assert len(generated) == 64
    assert link_secret_key(Settings(data_dir=tmp_path)) == generated
    assert (tmp_path / "link-secret").stat().st_mode & 0o777 == 0o600
