"""``Settings.from_env``: SPEC §2 defaults, and start-up failures that name the variable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from galaxy_tasks.config import ConfigError, Settings, env_name, get_settings, reset_settings_cache


@pytest.fixture(autouse=True)
def _fresh_settings_cache() -> Iterator[None]:
    reset_settings_cache()
    yield
    reset_settings_cache()


def test_fixed_names_default_to_the_spec_values() -> None:
    settings = Settings.from_env({})
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.broker_url == "redis://127.0.0.1:6379/0"
    assert settings.database_url == "postgresql+psycopg2://postgres@127.0.0.1:5432/galaxy"
    assert settings.engine_endpoint_template == "http://galaxy-game-{game_id}:8080"


def test_broker_url_defaults_to_the_redis_url() -> None:
    settings = Settings.from_env({"GALAXY_REDIS_URL": "redis://cache:6380/2"})
    assert settings.broker_url == "redis://cache:6380/2"


def test_an_empty_broker_url_falls_back_to_the_redis_url() -> None:
    settings = Settings.from_env({"GALAXY_REDIS_URL": "redis://cache:6380/2", "GALAXY_BROKER_URL": ""})
    assert settings.broker_url == "redis://cache:6380/2"


def test_an_explicit_broker_url_is_kept() -> None:
    settings = Settings.from_env({"GALAXY_REDIS_URL": "redis://cache/0", "GALAXY_BROKER_URL": "amqp://mq//"})
    assert (settings.redis_url, settings.broker_url) == ("redis://cache/0", "amqp://mq//")


def test_fixed_names_are_read_from_their_variables() -> None:
    settings = Settings.from_env(
        {
            "GALAXY_DATABASE_URL": "postgresql+psycopg2://gm@db:5432/gm",
            "GALAXY_ENGINE_ENDPOINT_TEMPLATE": "http://127.0.0.1:{game_id}",
        }
    )
    assert settings.database_url == "postgresql+psycopg2://gm@db:5432/gm"
    assert settings.engine_endpoint_template == "http://127.0.0.1:{game_id}"


def test_from_env_without_argument_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GALAXY_BRIDGE_BATCH_SIZE", "17")
    assert Settings.from_env().bridge_batch_size == 17


def test_get_settings_is_cached_until_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GALAXY_BACKLOG_PARTITIONS", "3")
    first = get_settings()
    monkeypatch.setenv("GALAXY_BACKLOG_PARTITIONS", "5")
    assert get_settings() is first
    reset_settings_cache()
    assert get_settings().backlog_partitions == 5


@pytest.mark.parametrize(
    ("variable", "raw", "attribute", "value"),
    [
        ("GALAXY_BRIDGE_BATCH_SIZE", "50", "bridge_batch_size", 50),
        ("GALAXY_LEASE_TTL_SECONDS", "2.5", "lease_ttl_seconds", 2.5),
        ("GALAXY_BACKLOG_THRESHOLD", "10", "backlog_threshold", 10),
        ("GALAXY_ORDER_REPAIR_AFTER_SECONDS", "90", "order_repair_after_seconds", 90.0),
        ("GALAXY_ORDER_REPAIR_INTERVAL_SECONDS", "2.5", "order_repair_interval_seconds", 2.5),
        ("GALAXY_ORDER_REPAIR_MAX_GAMES", "25", "order_repair_max_games", 25),
        ("GALAXY_METRICS_DIR", "/tmp/galaxy-metrics", "metrics_dir", "/tmp/galaxy-metrics"),
        ("GALAXY_LOG_LEVEL", "DEBUG", "log_level", "DEBUG"),
    ],
)
def test_galaxy_variables_override_their_setting(variable: str, raw: str, attribute: str, value: object) -> None:
    assert getattr(Settings.from_env({variable: raw}), attribute) == value


def test_an_empty_variable_keeps_the_default() -> None:
    assert Settings.from_env({"GALAXY_BRIDGE_BATCH_SIZE": ""}).bridge_batch_size == Settings().bridge_batch_size


def test_env_name_is_the_galaxy_prefixed_upper_case_field_name() -> None:
    assert env_name("bridge_block_ms") == "GALAXY_BRIDGE_BLOCK_MS"


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("GALAXY_BRIDGE_BATCH_SIZE", "many"),
        ("GALAXY_BRIDGE_BATCH_SIZE", "2.5"),
        ("GALAXY_LEASE_TTL_SECONDS", "ten"),
        ("GALAXY_METRICS_PORT", "80a"),
    ],
)
def test_a_value_that_does_not_parse_raises_config_error_naming_the_variable(variable: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=variable) as caught:
        Settings.from_env({variable: raw})
    assert repr(raw) in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("GALAXY_BRIDGE_BATCH_SIZE", "0"),
        ("GALAXY_BACKLOG_PARTITIONS", "-1"),
        ("GALAXY_LEASE_TTL_SECONDS", "0"),
        ("GALAXY_OUTBOX_RELAY_BATCH_SIZE", "-5"),
        ("GALAXY_DATABASE_POOL_SIZE", "0"),
        ("GALAXY_ORDER_REPAIR_AFTER_SECONDS", "0"),
        ("GALAXY_ORDER_REPAIR_INTERVAL_SECONDS", "-1"),
        ("GALAXY_ORDER_REPAIR_MAX_GAMES", "0"),
    ],
)
def test_a_value_that_must_be_positive_raises_config_error_naming_the_variable(variable: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=f"{variable} must be positive"):
        Settings.from_env({variable: raw})


@pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-inf", "infinity"])
def test_a_non_finite_duration_raises_config_error_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match="GALAXY_LEASE_TTL_SECONDS"):
        Settings.from_env({"GALAXY_LEASE_TTL_SECONDS": raw})


def test_a_block_time_close_to_the_lease_ttl_is_rejected() -> None:
    with pytest.raises(ConfigError, match="GALAXY_BRIDGE_BLOCK_MS"):
        Settings.from_env({"GALAXY_BRIDGE_BLOCK_MS": "5000", "GALAXY_LEASE_TTL_SECONDS": "10"})


def test_a_block_time_well_under_the_lease_ttl_is_accepted() -> None:
    assert (
        Settings.from_env({"GALAXY_BRIDGE_BLOCK_MS": "4999", "GALAXY_LEASE_TTL_SECONDS": "10"}).bridge_block_ms == 4999
    )


def test_an_engine_template_without_game_id_is_rejected() -> None:
    with pytest.raises(ConfigError, match="GALAXY_ENGINE_ENDPOINT_TEMPLATE"):
        Settings.from_env({"GALAXY_ENGINE_ENDPOINT_TEMPLATE": "http://engine:8080"})


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_the_default_settings_are_valid() -> None:
    Settings().validate()
    assert Settings.from_env({}) == Settings()


def test_docker_host_names_are_listed_and_a_hosts_own_name_must_be_one_of_them() -> None:
    settings = Settings.from_env({"GALAXY_DOCKER_HOSTS": "dh1, dh2", "GALAXY_DOCKER_HOST_NAME": "dh2"})
    assert settings.docker_host_names() == ["dh1", "dh2"]
    with pytest.raises(ConfigError, match="GALAXY_DOCKER_HOST_NAME='dh3'"):
        Settings.from_env({"GALAXY_DOCKER_HOSTS": "dh1,dh2", "GALAXY_DOCKER_HOST_NAME": "dh3"})
    with pytest.raises(ConfigError, match="queue names"):
        Settings.from_env({"GALAXY_DOCKER_HOSTS": "DH 1"})


def test_time_limits_must_stay_under_the_visibility_timeout_so_a_running_task_is_never_redelivered() -> None:
    with pytest.raises(ConfigError, match="never be redelivered"):
        Settings.from_env({"GALAXY_TASK_TIME_LIMIT_SECONDS": "60", "GALAXY_BROKER_VISIBILITY_TIMEOUT_SECONDS": "60"})
    with pytest.raises(ConfigError, match="never be redelivered"):
        Settings.from_env({"GALAXY_TASK_SOFT_TIME_LIMIT_SECONDS": "50"})
    Settings.from_env(
        {
            "GALAXY_TASK_SOFT_TIME_LIMIT_SECONDS": "6",
            "GALAXY_TASK_TIME_LIMIT_SECONDS": "8",
            "GALAXY_BROKER_VISIBILITY_TIMEOUT_SECONDS": "10",
        }
    )


def test_engine_containers_are_confined_by_default() -> None:
    isolation = Settings.from_env({}).engine_isolation()
    assert isolation.pids_limit > 0
    assert isolation.cap_add == ()
    assert isolation.no_new_privileges
    assert not isolation.read_only_rootfs
    assert isolation.user == ""


def test_engine_isolation_is_read_from_the_galaxy_engine_variables() -> None:
    isolation = Settings.from_env(
        {
            "GALAXY_ENGINE_PIDS_LIMIT": "64",
            "GALAXY_ENGINE_CAP_ADD": "net_bind_service, CAP_CHOWN,,",
            "GALAXY_ENGINE_NO_NEW_PRIVILEGES": "false",
            "GALAXY_ENGINE_READ_ONLY": "true",
            "GALAXY_ENGINE_USER": "65534:65534",
        }
    ).engine_isolation()
    assert isolation.pids_limit == 64
    assert isolation.cap_add == ("NET_BIND_SERVICE", "CHOWN")
    assert not isolation.no_new_privileges
    assert isolation.read_only_rootfs
    assert isolation.user == "65534:65534"


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("GALAXY_ENGINE_PIDS_LIMIT", "-1"),
        ("GALAXY_ENGINE_CAP_ADD", "NET BIND"),
        ("GALAXY_ENGINE_CAP_ADD", "SYS_ADMIN;rm -rf"),
        ("GALAXY_ENGINE_USER", "root; id"),
        ("GALAXY_ENGINE_USER", "1000:"),
        ("GALAXY_ENGINE_USER", " "),
    ],
)
def test_an_engine_isolation_value_docker_would_misread_raises_config_error_naming_it(variable: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: raw})


def test_a_url_is_read_from_the_file_its_file_variable_names(tmp_path: Path) -> None:
    secret = tmp_path / "database-url"
    secret.write_text("postgresql+psycopg2://galaxy:s3cret@db:5432/galaxy\n")
    redis_secret = tmp_path / "redis-url"
    redis_secret.write_text("redis://galaxy:pw@redis:6379/0")

    settings = Settings.from_env({"GALAXY_DATABASE_URL_FILE": str(secret), "GALAXY_REDIS_URL_FILE": str(redis_secret)})

    assert settings.database_url == "postgresql+psycopg2://galaxy:s3cret@db:5432/galaxy"
    assert settings.redis_url == "redis://galaxy:pw@redis:6379/0"
    assert settings.broker_url == "redis://galaxy:pw@redis:6379/0"


@pytest.mark.parametrize("variable", ["GALAXY_REDIS_URL", "GALAXY_BROKER_URL", "GALAXY_DATABASE_URL"])
def test_a_url_and_its_file_variable_both_set_is_a_config_error(variable: str, tmp_path: Path) -> None:
    (tmp_path / "url").write_text("redis://x:6379/0")

    with pytest.raises(ConfigError, match=f"{variable} or {variable}_FILE"):
        Settings.from_env({variable: "redis://y:6379/0", f"{variable}_FILE": str(tmp_path / "url")})


@pytest.mark.parametrize("content", [None, "", "\n"])
def test_a_missing_or_empty_secret_file_is_a_config_error_naming_the_variable(
    content: str | None, tmp_path: Path
) -> None:
    path = tmp_path / "redis-url"
    if content is not None:
        path.write_text(content)

    with pytest.raises(ConfigError, match="GALAXY_REDIS_URL_FILE"):
        Settings.from_env({"GALAXY_REDIS_URL_FILE": str(path)})


@pytest.mark.parametrize(("variable", "raw"), [("GALAXY_LOG_FORMAT", "xml"), ("GALAXY_LOG_LEVEL", "LOUD")])
def test_a_log_format_or_level_that_does_not_exist_is_a_config_error_naming_the_variable(
    variable: str, raw: str
) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: raw})
