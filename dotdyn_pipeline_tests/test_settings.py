"""Settings: the names an account's esc_secretname may give are checked when the settings are read."""

import pytest

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
