"""Inbound webhooks: one pure adapter per vendor (verify the signature, parse to canonical events)."""
