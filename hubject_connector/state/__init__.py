"""Durable state of the flows: the StateStore interface and its adapters."""
