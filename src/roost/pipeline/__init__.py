"""The stages every event goes through between its dialect and the Log (pipeline.py)."""
