"""Where events become durable (`log/`), where they are queried (`warehouse/`), and what Roost
knows besides them (`metadata/`: keys, accounts, contracts, destinations, profiles…)."""
