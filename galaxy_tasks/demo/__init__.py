"""What the one-command local run needs besides the system: a Docker Engine and an engine image of its own."""
