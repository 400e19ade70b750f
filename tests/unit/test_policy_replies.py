"""The Postfix policy service's reply table: every cause has a row, the contract texts are kept."""

from __future__ import annotations

from actions.policy_replies import REPLIES, Cause, reply


def test_every_cause_has_a_reply_row_with_a_metric_label() -> None:
    assert set(REPLIES) == set(Cause)
    assert all(row.metric and row.action for row in REPLIES.values())


def test_suspension_and_limit_keep_the_contract_texts() -> None:
    assert reply(Cause.SUSPENDED_SENDER, domain="shop.example") == (
        "550 5.7.1 outgoing mail from shop.example has been suspended"
    )
    assert reply(Cause.RECIPIENT_LIMIT, who="a@shop.example", limit=60, minutes=60) == (
        "450 4.7.1 a@shop.example has sent to 60 recipients in the last 60 minutes, try again later"
    )
    assert reply(Cause.ACCEPTED) == "DUNNO" and reply(Cause.FAILED_CLOSED).startswith("DEFER_IF_PERMIT 4.3.0")


def test_a_field_cannot_break_the_reply_line() -> None:
    assert "\n" not in reply(Cause.SUSPENDED_SENDER, domain="evil\nexample")
