"""Shared kernel of abuse-desk: contracts, settings, logging, broker and database glue."""
