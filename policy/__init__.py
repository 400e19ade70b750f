"""Policy stage: investigate reports, decide per the provider's policy, keep cases, deadlines and the outbox."""
