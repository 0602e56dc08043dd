"""omnirouter_presence."""
