"""Logging with correlation ids, and the metrics shared by every service."""
