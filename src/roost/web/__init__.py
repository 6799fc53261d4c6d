"""What faces the network: the ASGI app, ingest, the HTTP API and the dashboard."""
