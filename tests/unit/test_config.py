"""Settings: embedded defaults, switching by environment, and clear errors naming the variable."""

from __future__ import annotations

import pytest

from backend.container.settings import load_settings
from backend.platform.config import SettingsError


def test_embedded_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("var/creditrisk.db")
    assert s.cache.url == "memory://"
    assert s.llm.provider == "template" and s.model.server == "local"


def test_environment_switches_backends(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CREDITRISK_DATABASE__URL", "postgresql://app:s3cret@db.internal:5432/credit")
    monkeypatch.setenv("CREDITRISK_CACHE__URL", "redis://127.0.0.1:6379/0")
    s = load_settings()
    assert s.database_url == "postgresql+psycopg://app:s3cret@db.internal:5432/credit"
    assert "s3cret" not in s.describe()["database"]
    assert s.cache.url.startswith("redis://")


def test_dotenv_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CREDITRISK_LLM__PROVIDER=anthropic\nCREDITRISK_LLM__API_KEY=sk-test\n")
    s = load_settings()
    assert s.llm.provider == "anthropic"
    assert "sk-test" not in repr(s)


@pytest.mark.parametrize("env,value", [
    ("CREDITRISK_DATABASE__URL", "mysql://x"),
    ("CREDITRISK_CACHE__URL", "memcached://x"),
    ("CREDITRISK_LLM__PROVIDER", "gpt"),
    ("CREDITRISK_LLM__TIMEOUT", "-1"),
    ("CREDITRISK_POLICY__CONFIDENCE_THRESHOLD", "abc"),
    ("CREDITRISK_ENV", "staging"),
])
def test_malformed_setting_names_the_variable(tmp_path, monkeypatch, env, value):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as exc:
        load_settings()
    assert str(exc.value).startswith(f"Invalid setting {env}:")
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("key", ["", "changeme", "short-but-not-placeholder"])
def test_production_refuses_weak_cookie_key(tmp_path, monkeypatch, key):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CREDITRISK_ENV", "production")
    monkeypatch.setenv("CREDITRISK_AUTH__COOKIE_KEY", key)
    with pytest.raises(SettingsError, match="CREDITRISK_AUTH__COOKIE_KEY"):
        load_settings()


def test_production_accepts_strong_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CREDITRISK_ENV", "production")
    monkeypatch.setenv("CREDITRISK_AUTH__COOKIE_KEY", "k" * 40)
    assert load_settings().cookie_secret() == "k" * 40


def test_dev_cookie_key_is_random_and_persistent(tmp_path):
    s = load_settings(data_dir=tmp_path)
    k1 = s.cookie_secret()
    assert len(k1) >= 32 and k1 == s.cookie_secret()
    assert (tmp_path / "cookie_key").stat().st_mode & 0o777 == 0o600


# -- audit retention ------------------------------------------------------------------------------
def test_audit_retention_defaults_to_seven_years(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_settings().audit.retention_days == 2557


@pytest.mark.parametrize("value,ok", [("761", True), ("3650", True), ("760", False), ("365", False), ("0", False),
                                      ("-1", False), ("36501", False), ("seven years", False)])
def test_audit_retention_never_below_regulation_b(tmp_path, monkeypatch, value, ok):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CREDITRISK_AUDIT__RETENTION_DAYS", value)
    if ok:
        assert load_settings().audit.retention_days == int(value)
        return
    with pytest.raises(SettingsError) as exc:
        load_settings()
    msg = str(exc.value)
    assert msg.startswith("Invalid setting CREDITRISK_AUDIT__RETENTION_DAYS:") and "\n" not in msg
    if value.lstrip("-").isdigit() and int(value) < 761:
        assert "at least 761 days" in msg and "Regulation B" in msg and "25 months" in msg
