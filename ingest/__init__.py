"""Intake stage: the SMTP listener and the normalizer that turns raw mail into AbuseReports."""
