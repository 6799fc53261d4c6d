"""HTTP routes: ingest, SQL, operations. app.py puts them together."""
