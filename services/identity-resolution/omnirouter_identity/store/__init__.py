"""PostgreSQL adapters of the identity graph (schema ``identity``). Every function takes a connection
inside a transaction opened by :func:`~.tx.serializable`; none commits on its own."""
