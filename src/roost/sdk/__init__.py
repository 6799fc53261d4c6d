"""Roost's Python client (standard library only: importable without the server's packages).

from roost.sdk import Client
roost = Client("rw_...", "http://127.0.0.1:8000")
roost.track("Order Completed", {"revenue": 42.5}, user_id="user-1")
"""

from roost.sdk.client import Client, Failure

__all__ = ["Client", "Failure"]
