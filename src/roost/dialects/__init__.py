"""Wire formats → canonical events. One module per dialect of API.md."""
