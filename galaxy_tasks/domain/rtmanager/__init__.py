"""The Runtime Manager's pure domain: health events and snapshots, inspect and probe judgements."""
