"""Errors shared by every stage, so handlers can tell poison from transient failures."""


class AbuseDeskError(Exception):
    """Base of the project's own errors."""


class ConfigError(AbuseDeskError):
    """The configuration (TOML file or environment) is invalid; the message says what to fix."""


class ContractError(AbuseDeskError):
    """A message does not follow the contract: it will never succeed (dead-letter it)."""


class TransientError(AbuseDeskError):
    """A temporary failure (broker, database, remote API): retry later."""


class PermanentError(AbuseDeskError):
    """A failure that retrying will not fix (4xx from an API, 5xx from a mail relay)."""
