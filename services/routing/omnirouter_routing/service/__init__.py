"""The Kafka stream processor around the pure core: one writer per inbox partition, state restored from
compacted snapshots plus a replay of the inbox, decisions published and audited before the commit."""
