"""Fixtures for the real servers the integration tests start (see services.py)."""

from tests.integration.services import nats_server, postgres

__all__ = ["nats_server", "postgres"]
