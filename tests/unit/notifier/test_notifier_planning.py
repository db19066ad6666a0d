"""Delivery planning: who gets which message over which channel, under which idempotency key."""

import pytest

from services.notifier.domain.deliveries import ChannelKind, RetryPolicy, idempotency_key, plan_deliveries
from shared.events import OwnerRef

EMAIL_AND_CONSOLE = (ChannelKind.EMAIL, ChannelKind.CONSOLE)


def test_group_delivery_sends_one_email_to_all_addresses(make_alarm):
    """A `group` owner gets one email addressed to all of its addresses."""
    owner = OwnerRef(name="security-team", email=["a@example.com", "b@example.com"], rule="default")
    plan = plan_deliveries(make_alarm(owners=[owner]), "ev-1", channels=EMAIL_AND_CONSOLE)
    assert [(d.channel, d.recipients) for d in plan] == [(ChannelKind.EMAIL, ("a@example.com", "b@example.com"))]
    assert plan[0].recipient == "a@example.com,b@example.com"


def test_individual_delivery_sends_one_email_per_address(make_alarm):
    """An `individual` owner gets one email per address, each with its own key."""
    plan = plan_deliveries(make_alarm(), "ev-1", channels=EMAIL_AND_CONSOLE)
    assert [d.recipients for d in plan] == [("alice@example.com",), ("bob@example.com",)]
    assert len({d.idempotency_key for d in plan}) == 2
    assert {d.owner for d in plan} == {"shop-team"}
    assert {d.rule for d in plan} == {"certificate[0] san=*.shop.example.com"}


def test_owner_without_addresses_falls_back_to_console(make_alarm):
    """An owner with no email address is printed to the console rather than dropped."""
    owner = OwnerRef(name="platform-team", rule="server web-01")
    plan = plan_deliveries(make_alarm(owners=[owner]), "ev-1", channels=EMAIL_AND_CONSOLE)
    assert [(d.channel, d.recipients, d.owner) for d in plan] == [
        (ChannelKind.CONSOLE, ("platform-team",), "platform-team")
    ]


def test_no_email_channel_configured_falls_back_to_console(make_alarm):
    """Without an email channel every owner is printed to the console."""
    plan = plan_deliveries(make_alarm(), "ev-1", channels=(ChannelKind.CONSOLE,))
    assert [(d.channel, d.recipient) for d in plan] == [(ChannelKind.CONSOLE, "shop-team")]


def test_alarm_without_owner_is_printed_to_console(make_alarm):
    """An alarm nobody owns still reaches the console."""
    plan = plan_deliveries(make_alarm(owners=[]), "ev-1", channels=EMAIL_AND_CONSOLE)
    assert [(d.channel, d.recipient) for d in plan] == [(ChannelKind.CONSOLE, "unowned")]


def test_address_shared_by_two_owners_gets_one_email(make_alarm):
    """A critical certificate notifies two owners; an address both list is emailed once."""
    owners = [
        OwnerRef(name="shop-team", email=["alice@example.com"], delivery="individual", rule="certificate[0]"),
        OwnerRef(
            name="platform-team",
            email=["alice@example.com", "ops@example.com"],
            delivery="individual",
            rule="server web-01 (critical certificate)",
        ),
    ]
    plan = plan_deliveries(make_alarm(owners=owners), "ev-1", channels=EMAIL_AND_CONSOLE)
    assert [(d.recipient, d.owner) for d in plan] == [
        ("alice@example.com", "shop-team"),
        ("ops@example.com", "platform-team"),
    ]


def test_idempotency_key_names_event_channel_and_recipient():
    """The key is (alarm event id, channel, recipient), so it differs when any of them does."""
    key = idempotency_key("ev-1", ChannelKind.EMAIL, "alice@example.com")
    assert key == "ev-1|email|alice@example.com"
    assert key != idempotency_key("ev-2", ChannelKind.EMAIL, "alice@example.com")
    assert key != idempotency_key("ev-1", ChannelKind.CONSOLE, "alice@example.com")
    assert key != idempotency_key("ev-1", ChannelKind.EMAIL, "bob@example.com")


def test_same_event_plans_the_same_keys(make_alarm):
    """Planning is deterministic: a redelivered event yields the keys already logged."""
    first = plan_deliveries(make_alarm(), "ev-1", channels=EMAIL_AND_CONSOLE)
    again = plan_deliveries(make_alarm(), "ev-1", channels=EMAIL_AND_CONSOLE)
    assert [d.idempotency_key for d in first] == [d.idempotency_key for d in again]


def test_retry_backoff_doubles_up_to_the_cap():
    """Delays grow exponentially from the base and never exceed the cap."""
    policy = RetryPolicy(attempts=5, base_delay=1.0, max_delay=5.0)
    assert [policy.delay_after(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]


def test_retry_policy_needs_at_least_one_attempt():
    """A policy that would never try is refused."""
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
