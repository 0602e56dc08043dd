"""`make bench`: the suite under an open-loop webhook load, measured end to end against its bare ceiling.

Run from the repository root: ``python -m bench.run`` (``make bench``). Pure parts (the arrival
schedule, webhook signing, frame matching, percentiles, the report) are separate from the processes and
sockets, so they are unit-tested in ``tests/bench``.
"""
