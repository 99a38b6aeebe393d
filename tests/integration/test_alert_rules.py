"""The operations layer in deploy/: alert rules that promtool accepts and whose unit tests pass, a dashboard
that is what its generator prints, every metric either names really exported, every runbook link a
section of docs/operations.md."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess

import pytest
import yaml
from celery import Celery
from prometheus_client import REGISTRY, CollectorRegistry

import galaxy_tasks.metrics  # noqa: F401  (registers the per-process metrics)
from galaxy_tasks.bootstrap import Resources
from galaxy_tasks.cli.cluster_metrics import ClusterCollector
from galaxy_tasks.config import Settings
from galaxy_tasks.testing.cluster import REPO
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

PROMETHEUS = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "galaxy-tasks.json"
RUNBOOK = REPO / "docs" / "operations.md"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool is not None, "promtool is missing: bash scripts/test-tools.sh installs it"
    return subprocess.run([tool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120, check=False)


def rules() -> list[dict[str, object]]:
    loaded = yaml.safe_load((PROMETHEUS / "galaxy.rules.yml").read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [str(target["expr"]) for p in panels for target in p["targets"]]


def metric_names(expression: str) -> set[str]:
    return set(re.findall(r"\b(galaxy_[a-z0-9_]+)\b", expression))


def test_promtool_accepts_the_rules_the_scrape_config_and_the_rules_unit_tests_pass() -> None:
    checked = promtool("check", "rules", "galaxy.rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    tested = promtool("test", "rules", "galaxy.rules.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_unit_test_a_severity_and_a_runbook_section() -> None:
    tests = yaml.safe_load((PROMETHEUS / "galaxy.rules.test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("#")
    }
    for rule in rules():
        name = str(rule["alert"])
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert name in tested, f"{name} has no promtool unit test"
        assert rule["labels"] == {"severity": "page"} or rule["labels"] == {"severity": "ticket"}, name
        anchor = str(annotations["runbook_url"]).removeprefix("docs/operations.md#")
        assert anchor == name.lower(), name
        assert anchor in headings, f"docs/operations.md has no section for {name}"


def test_the_committed_dashboard_is_what_its_generator_prints() -> None:
    spec = importlib.util.spec_from_file_location("make_dashboard", REPO / "deploy" / "grafana" / "make_dashboard.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert json.loads(DASHBOARD.read_text()) == module.dashboard()


def exported_names(pipeline: Pipeline) -> set[str]:
    """Every sample name the per-process registry and a scrape of the cluster collector give."""
    names = {sample.name for family in REGISTRY.collect() for sample in family.samples}
    for family in REGISTRY.collect():  # a labelled metric nobody used yet has no samples: name it anyway
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
    settings = Settings.from_env(pipeline.env)
    app = Celery("alert-rules-test")
    app.config_from_object("galaxy_tasks.celeryconfig")
    app.conf.update(broker_url=settings.broker_url)
    res = Resources(settings)
    try:
        cluster = CollectorRegistry()
        cluster.register(ClusterCollector(lambda: res, app))
        names |= {sample.name for family in cluster.collect() for sample in family.samples}
    finally:
        res.close()
    return names


def test_every_metric_the_alerts_and_the_dashboard_name_is_exported(pipeline: Pipeline) -> None:
    named = set().union(*(metric_names(str(rule["expr"])) for rule in rules()))
    named |= set().union(*(metric_names(query) for query in dashboard_queries()))
    exported = exported_names(pipeline)

    assert "galaxy_cluster_bridge_lag_seconds" in named
    assert sorted(named - exported) == []
