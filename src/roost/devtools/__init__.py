"""Tools for developing and trying Roost (local servers, a cluster on one machine, demo data): never imported by the server."""
