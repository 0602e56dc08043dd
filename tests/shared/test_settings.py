from __future__ import annotations

import pytest
from pydantic import Field, SecretStr

from omnirouter_shared.settings import ServiceSettings, SettingsError


class _Settings(ServiceSettings):
    http_port: int = 8099
    secret: SecretStr = Field(json_schema_extra={"env": "MY_SECRET"})
    batch: int = Field(default=10, ge=1)


def test_reads_variables_by_field_name_or_declared_name() -> None:
    s = _Settings.from_env({"MY_SECRET": "s3cr3t", "HTTP_PORT": "9000", "OMNI_TOPIC_PREFIX": "dev."})
    assert s.http_port == 9000
    assert s.secret.get_secret_value() == "s3cr3t"
    assert s.topic("omni.x") == "dev.omni.x"
    assert "s3cr3t" not in repr(s)


def test_every_problem_is_reported_at_once_by_variable_name() -> None:
    with pytest.raises(SettingsError) as info:
        _Settings.from_env({"HTTP_PORT": "eighty", "BATCH": "0"})
    text = str(info.value)
    assert "HTTP_PORT is invalid" in text
    assert "BATCH is invalid" in text
    assert "MY_SECRET is required but not set" in text


def test_empty_values_count_as_unset() -> None:
    s = _Settings.from_env({"MY_SECRET": "x", "HTTP_PORT": ""})
    assert s.http_port == 8099
