"""The reports, pure: each parses a request, writes its SQL in a Warehouse's flavour and shapes
the rows (reports.py lists them all); running the SQL is the caller's."""
