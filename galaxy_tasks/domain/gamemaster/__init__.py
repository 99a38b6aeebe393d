"""Game Master domain: runtime statuses, health-event plans, entry decoding (seeds 001, 004)."""
