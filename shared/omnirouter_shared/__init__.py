"""omnirouter_shared."""
