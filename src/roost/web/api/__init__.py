"""The HTTP API beyond ingest (Starlette routes, each with its Doc): SQL, reports, profiles,
erasure, export, configuration, destinations, the debugger, operations. web/app.py puts them
together."""
