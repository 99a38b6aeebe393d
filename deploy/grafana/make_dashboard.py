"""Writes deploy/grafana/galaxy-tasks.json, the Grafana dashboard of galaxy_tasks (import it, pick the
Prometheus data source): ``python deploy/grafana/make_dashboard.py > deploy/grafana/galaxy-tasks.json``.

Kept as code so every panel's query is reviewable in one place; tests/e2e/test_alert_rules.py checks
that the committed JSON is what this prints and that every metric a panel names exists.
"""

from __future__ import annotations

import json

PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    # (title, unit, [(query, legend)])
    (
        "SLI: health entry appended -> Lobby entry appended, and -> Game Master commit",
        "s",
        [
            (
                f"histogram_quantile({q}, sum by (le) (rate(galaxy_gm_lobby_entry_freshness_seconds_bucket[5m])))",
                f"Lobby p{n}",
            )
            for q, n in (("0.5", 50), ("0.99", 99))
        ]
        + [
            (
                f"histogram_quantile({q}, sum by (le) (rate(galaxy_gm_health_entry_commit_seconds_bucket[5m])))",
                f"commit p{n}",
            )
            for q, n in (("0.5", 50), ("0.99", 99))
        ],
    ),
    (
        "Lobby freshness: age of the oldest entry waiting for a bridge",
        "s",
        [("max by (stream) (galaxy_cluster_bridge_lag_seconds)", "{{stream}}")],
    ),
    (
        "Bridge lag (entries after the stored offset)",
        "short",
        [("max by (stream) (galaxy_cluster_bridge_lag_entries)", "{{stream}}")],
    ),
    ("Celery queue depth", "short", [("max by (queue) (galaxy_cluster_queue_depth)", "{{queue}}")]),
    (
        "Health entries the Game Master finished, and Lobby entries published",
        "ops",
        [
            ("sum(rate(galaxy_gm_health_events_consumed_total[1m]))", "consumed"),
            ("sum(rate(galaxy_gm_lobby_events_published_total[1m]))", "published to gm:lobby_events"),
            ("sum(rate(galaxy_rtm_health_events_published_total[1m]))", "published by the Runtime Manager"),
        ],
    ),
    (
        "Entries handed on per event / in chunks",
        "ops",
        [("sum by (mode) (rate(galaxy_bridge_entries_dispatched_total[1m]))", "{{mode}}")],
    ),
    (
        "Runtime status transitions",
        "ops",
        [
            (
                "sum by (from_status, to_status) (rate(galaxy_gm_status_transitions_total[5m]))",
                "{{from_status}} → {{to_status}}",
            )
        ],
    ),
    (
        "Skipped, duplicate and parked entries",
        "ops",
        [
            ("sum by (reason) (rate(galaxy_gm_health_events_skipped_total[5m]))", "skipped: {{reason}}"),
            ("sum(rate(galaxy_gm_health_events_duplicate_total[5m]))", "duplicate"),
            ("sum(rate(galaxy_gm_health_events_parked_total[5m]))", "parked"),
        ],
    ),
    ("Outbox backlog", "short", [("max by (outbox) (galaxy_cluster_outbox_backlog)", "{{outbox}}")]),
    (
        "Long-running singletons held (1) or not (0)",
        "short",
        [("max by (singleton) (galaxy_cluster_singleton_held)", "{{singleton}}")],
    ),
    (
        "Start/stop jobs finished",
        "ops",
        [("sum by (job, outcome) (rate(galaxy_rtm_jobs_finished_total[5m]))", "{{job}} {{outcome}}")],
    ),
    (
        "Start/stop job duration p99",
        "s",
        [("histogram_quantile(0.99, sum by (job, le) (rate(galaxy_rtm_job_duration_seconds_bucket[5m])))", "{{job}}")],
    ),
    (
        "Probes and inspections",
        "ops",
        [
            ("sum by (result) (rate(galaxy_rtm_probes_total[5m]))", "probe {{result}}"),
            ("sum by (result) (rate(galaxy_rtm_inspections_total[5m]))", "inspect {{result}}"),
        ],
    ),
    (
        "Gaps, parked entries and orphans",
        "short",
        [
            ("sum(increase(galaxy_gm_health_event_gaps_total[1h]))", "health-entry gaps (1 h)"),
            ("sum(increase(galaxy_bridge_trim_gaps_total[1h]))", "trimmed past an offset (1 h)"),
            ("max(galaxy_cluster_parked_entries)", "parked now"),
            ("max(galaxy_cluster_orphan_containers)", "orphan containers"),
        ],
    ),
    ("Cluster collector up", "short", [("min(galaxy_cluster_up)", "up")]),
]


def panel(index: int, title: str, unit: str, targets: list[tuple[str, str]]) -> dict[str, object]:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + n), "expr": expr, "legendFormat": legend}
            for n, (expr, legend) in enumerate(targets)
        ],
    }


def dashboard() -> dict[str, object]:
    return {
        "uid": "galaxy-tasks",
        "title": "galaxy_tasks",
        "description": "Runtime health of the game engines: freshness of the Lobby's view, the pipeline, jobs",
        "tags": ["galaxy_tasks", "celery"],
        "schemaVersion": 38,
        "version": 1,
        "time": {"from": "now-3h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [{"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus"}]
        },
        "panels": [panel(n, *spec) for n, spec in enumerate(PANELS)],
    }


if __name__ == "__main__":
    print(json.dumps(dashboard(), indent=2, ensure_ascii=False))
