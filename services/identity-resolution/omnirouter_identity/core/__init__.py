"""The pure identity-resolution core: normalisation, evidence tiers, guard rails and decisions.

Nothing here performs I/O. The resolver reads a :class:`~.view.GraphView` (what the store knows about
the identifiers an interaction carries) and returns decisions as data; adapters apply them.
"""
