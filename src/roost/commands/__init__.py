"""The `roost` subcommands, grouped by what they manage; cli.py puts them together."""
