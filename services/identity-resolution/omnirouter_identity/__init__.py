"""omnirouter_identity."""
