"""The SMTP replies of the abuse@ listener, one table: each situation maps to exactly one reply."""

from __future__ import annotations

from typing import Final

OK_QUEUED: Final = "250 2.0.0 queued as {report_id}"
RCPT_OK: Final = "250 2.1.5 OK"
RCPT_NOT_ABUSE: Final = "550 5.1.1 <{address}>: recipient not accepted here (abuse desk only)"
TOO_MANY_RECIPIENTS: Final = "452 4.5.3 too many recipients"
TOO_BIG: Final = "552 5.3.4 message too big (limit {limit} bytes)"
TEMPORARY_FAILURE: Final = "451 4.3.0 temporary failure, please retry later"
SHUTTING_DOWN: Final = "421 4.3.2 service shutting down, please retry later"
NO_RECIPIENTS: Final = "554 5.5.1 no valid recipients"
