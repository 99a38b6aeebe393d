"""Use cases: each module holds the logic of one, written against the ports."""
