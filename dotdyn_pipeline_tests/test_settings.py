"""Settings: the names an account's esc_secretname may give, and how the Web API is spoken to, are checked when the
settings are read."""

import pytest

from dotdyn_pipeline.connectors.dataverse import DataverseConfig
from dotdyn_pipeline.resources import DataverseResource, resources
from dotdyn_pipeline.settings import Settings, SettingsError


def test_accounts_may_name_variables_of_the_prefix_and_those_listed():
    settings = Settings.from_env({"DOTDYN_SECRET_NAMES": " DOTDIGITAL_EU, DOTDIGITAL_US ,"})
    assert settings.secret_prefix == "DOTDYN_DOTDIGITAL_"
    assert settings.secret_names == {"DOTDIGITAL_EU", "DOTDIGITAL_US"}


@pytest.mark.parametrize(("variable", "value", "reason"), [
    ("DOTDYN_SECRET_PREFIX", "DOTDYN_", "must not cover the pipeline's own secret DOTDYN_CLIENT_SECRET"),
    ("DOTDYN_SECRET_PREFIX", "DOTDYN_POSTGRES", "must not cover the pipeline's own secret DOTDYN_POSTGRES_URL"),
    ("DOTDYN_SECRET_PREFIX", "DOTDIGITAL-", "the start of an environment variable's name"),
    ("DOTDYN_SECRET_NAMES", "DOTDIGITAL_EU,DOTDYN_CLIENT_SECRET", "must not list the pipeline's own secret"),
    ("DOTDYN_SECRET_NAMES", "DOTDIGITAL EU", "is not an environment variable's name"),
])
def test_a_setting_that_would_let_an_account_name_another_secret_is_refused(variable, value, reason):
    with pytest.raises(SettingsError, match=variable) as refused:
        Settings.from_env({variable: value})
    assert reason in str(refused.value)


def test_the_web_api_is_spoken_as_configured_and_reaches_the_client(monkeypatch):
    assert Settings.from_env({}).dataverse_api_version == "v9.2"
    for name, value in {"DOTDYN_DATAVERSE_API_VERSION": "v8.2", "DOTDYN_DATAVERSE_CHANGE_TRACKING": "off",
                        "DOTDYN_TOKEN_SCOPE": "https://crm.contoso.com/"}.items():
        monkeypatch.setenv(name, value)
    wired = resources()["dataverse"]
    resource = DataverseResource(org_url="https://crm.contoso.com", authority="https://adfs.contoso.com/adfs",
                                 client_id="app", client_secret="secret", api_version=wired.api_version,
                                 change_tracking=wired.change_tracking, token_scope=wired.token_scope)
    with resource.client() as client:
        config = client.config
    assert (config.api_version, config.change_tracking, config.token_scope) == ("v8.2", False, "https://crm.contoso.com/")
    assert config.api_root == "https://crm.contoso.com/api/data/v8.2/"


@pytest.mark.parametrize(("variable", "value", "reason"), [
    ("DOTDYN_DATAVERSE_API_VERSION", "9.2", "must be one of v8.2, v9.0, v9.1, v9.2"),
    ("DOTDYN_DATAVERSE_API_VERSION", "v10.0", "must be one of v8.2, v9.0, v9.1, v9.2"),
    ("DOTDYN_DATAVERSE_CHANGE_TRACKING", "yes", "must be on or off"),
    ("DOTDYN_TOKEN_SCOPE", "https://a.example/.default https://b.example/.default", "must be one scope"),
])
def test_a_web_api_setting_the_client_cannot_use_is_refused(variable, value, reason):
    with pytest.raises(SettingsError, match=variable) as refused:
        Settings.from_env({variable: value})
    assert reason in str(refused.value)


def test_a_client_of_an_unknown_version_is_not_built():
    with pytest.raises(ValueError, match="api_version='v7.0': must be one of"):
        DataverseConfig("https://crm.contoso.com", "https://adfs.contoso.com/adfs", "app", api_version="v7.0")
