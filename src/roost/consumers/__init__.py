"""What follows the Log after events are stored: profiles (and, later, forwarders, the debugger)."""
