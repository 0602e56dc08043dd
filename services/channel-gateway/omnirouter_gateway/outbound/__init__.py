"""Outbound delivery: replies from agents and bots to customers, through each vendor's API."""
