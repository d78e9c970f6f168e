import pytest

from kundli.settings import Settings, SettingsError

BASE = {"KUNDLI_DATABASE_URL": "postgresql://u@/db"}


def test_defaults():
    settings = Settings.from_env(BASE)
    assert settings.port == 8000 and settings.log_file is None and not settings.test_mode


def test_all_settings_are_read():
    env = {**BASE, "KUNDLI_HOST": "0.0.0.0", "KUNDLI_PORT": "9000", "KUNDLI_LOG_FILE": "/tmp/k.log",
           "KUNDLI_LOG_LEVEL": "debug", "KUNDLI_DB_POOL_MIN": "1", "KUNDLI_DB_POOL_MAX": "3",
           "KUNDLI_CACHE_SIZE": "0", "KUNDLI_TOKEN_CACHE_SECONDS": "5", "KUNDLI_HSTS_MAX_AGE": "60",
           "KUNDLI_FORWARDED_ALLOW_IPS": "*", "KUNDLI_DEFAULT_AYANAMSA": "raman", "KUNDLI_TEST_MODE": "yes", "KUNDLI_FAULTS": '{"unhealthy": true}'}
    s = Settings.from_env(env)
    assert (s.host, s.port, s.log_level, s.db_pool_max, s.cache_size, s.faults, s.default_ayanamsa) == \
        ("0.0.0.0", 9000, "DEBUG", 3, 0, {"unhealthy": True}, "raman")


@pytest.mark.parametrize("env, message", [
    ({}, "KUNDLI_DATABASE_URL: required"),
    ({**BASE, "KUNDLI_PORT": "http"}, "KUNDLI_PORT: expected an integer"),
    ({**BASE, "KUNDLI_PORT": "0"}, "KUNDLI_PORT: must be >= 1"),
    ({**BASE, "KUNDLI_LOG_LEVEL": "LOUD"}, "KUNDLI_LOG_LEVEL"),
    ({**BASE, "KUNDLI_DEFAULT_AYANAMSA": "fagan"}, "KUNDLI_DEFAULT_AYANAMSA: expected one of"),
    ({**BASE, "KUNDLI_TEST_MODE": "maybe"}, "KUNDLI_TEST_MODE: expected a boolean"),
    ({**BASE, "KUNDLI_DB_POOL_MIN": "5", "KUNDLI_DB_POOL_MAX": "2"}, "KUNDLI_DB_POOL_MAX"),
    ({**BASE, "KUNDLI_TEST_MODE": "1", "KUNDLI_FAULTS": "{nope"}, "not valid JSON"),
    ({**BASE, "KUNDLI_TEST_MODE": "1", "KUNDLI_FAULTS": "[1]"}, "expected a JSON object"),
])
def test_bad_settings_name_the_problem(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_main_reports_bad_settings_in_one_line(monkeypatch, capsys):
    from kundli.__main__ import main
    monkeypatch.delenv("KUNDLI_DATABASE_URL", raising=False)
    assert main([]) == 2
    assert capsys.readouterr().err.strip() == \
        "kundli-service: configuration error: KUNDLI_DATABASE_URL: required (a PostgreSQL connection URL)"


def test_fault_enabled_for_code_outside_the_app():
    from kundli.settings import fault_enabled
    env = {"KUNDLI_FAULTS": '{"broken_downgrade": true}'}
    assert not fault_enabled("broken_downgrade", env)
    assert fault_enabled("broken_downgrade", {**env, "KUNDLI_TEST_MODE": "1"})
    assert not fault_enabled("unhealthy", {**env, "KUNDLI_TEST_MODE": "1"})
