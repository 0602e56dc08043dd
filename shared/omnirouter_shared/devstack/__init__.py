"""The embedded default: a real Kafka-compatible broker and a real PostgreSQL from PyPI wheels, for
`make run`, the tests and the benchmark on a machine without Docker."""
