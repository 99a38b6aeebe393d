"""Redis adapters: stream reading, bridge state, leases, the Lobby stream relay."""
