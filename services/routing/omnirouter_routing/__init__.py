"""omnirouter_routing."""
