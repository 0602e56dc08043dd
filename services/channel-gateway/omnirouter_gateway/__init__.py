"""omnirouter_gateway."""
