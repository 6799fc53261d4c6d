"""Wire formats → canonical events: one module per dialect of docs/wire-contracts.md, sans-I/O."""
