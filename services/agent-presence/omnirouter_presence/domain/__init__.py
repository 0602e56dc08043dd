"""The pure core of agent-presence: no I/O, no clock, no randomness except where a function says so."""
