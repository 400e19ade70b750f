"""Report formats: one module per format family, all pure (bytes in, AbuseReport out)."""
