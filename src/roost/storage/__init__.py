"""Where events become durable (the Log) and where they are queried (the Warehouse)."""
