"""Is a customer file valid? Configured checks: required fields, e-mail syntax, identity verified."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from email_validator import EmailNotValidError, validate_email

from core.settings import PolicyConfig


def detail_problems(customer: Mapping[str, Any], config: PolicyConfig) -> tuple[str, ...]:
    """Plain-language problems with the customer's details; empty when the file is valid (pure: no DNS)."""
    problems: list[str] = []
    for field in config.required_customer_fields:
        if not str(customer.get(field) or "").strip():
            problems.append(f"{field} is missing")
    email = str(customer.get("email") or "").strip()
    if email:
        try:
            validate_email(email, check_deliverability=False)
        except EmailNotValidError as exc:
            problems.append(f"e-mail address {email!r} is invalid ({exc})")
    if config.require_identity_verified and not customer.get("identity_verified"):
        problems.append("identity not verified")
    return tuple(problems)
