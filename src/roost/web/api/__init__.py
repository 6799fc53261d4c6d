"""HTTP routes: ingest, SQL, operations. web/app.py puts them together."""
