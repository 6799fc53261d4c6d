"""Roost: self-hosted event collection and product analytics."""

__version__ = "0.1.0"
