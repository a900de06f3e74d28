"""The organisation a command run outside Dagster (`dotdyn provision`, `dotdyn doctor`) signs in to.

The same variables as the pipeline's Dataverse resource: DOTDYN_DATAVERSE_URL, DOTDYN_AUTHORITY,
DOTDYN_CLIENT_ID, DOTDYN_CLIENT_SECRET, and through Settings DOTDYN_CA_BUNDLE, DOTDYN_DATAVERSE_API_VERSION and
DOTDYN_TOKEN_SCOPE.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from dotdyn_pipeline.connectors.dataverse import DataverseConfig
from dotdyn_pipeline.settings import Settings, SettingsError

SIGN_IN = ("DOTDYN_DATAVERSE_URL", "DOTDYN_AUTHORITY", "DOTDYN_CLIENT_ID", "DOTDYN_CLIENT_SECRET")


def dataverse_config(settings: Settings | None = None, environ: Mapping[str, str] | None = None) -> DataverseConfig:
    """The organisation's Web API and the app's sign-in; SettingsError names the variables that are not set."""
    env = os.environ if environ is None else environ
    settings = settings or Settings.from_env(env)
    if missing := [name for name in SIGN_IN if not env.get(name)]:
        raise SettingsError(f"{', '.join(missing)} not set: they name the organisation and the app registration "
                            "that signs in to it (docs/configuration.md)")
    url, authority, client_id, secret = (env[name] for name in SIGN_IN)
    return DataverseConfig(org_url=url, authority=authority, client_id=client_id, client_secret=secret,
                           ca_bundle=settings.ca_bundle, api_version=settings.dataverse_api_version,
                           token_scope=settings.token_scope)
