"""What follows the Log once events are stored: the Loader (into the Warehouse), profiles,
forwarders (to destinations), the live debugger's feed, the erasure scrubber, budget notices,
and the worker that runs them apart from `roost serve`."""
