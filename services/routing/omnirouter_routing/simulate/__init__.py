"""What-if simulation: recorded or generated traffic through the routing core under any configuration.

``python -m omnirouter_routing.simulate --help`` (``make simulate ARGS=...``). See docs/routing.md.
"""
