"""Destinations: plugins in the `roost.destinations` entry point group that deliver a batch."""
