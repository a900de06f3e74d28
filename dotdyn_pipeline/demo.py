"""`dotdyn demo`: the whole pipeline on the sandbox, with the embedded instance, and a summary per account."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dotdyn_pipeline.instance import prepare_dagster_home
from dotdyn_pipeline.settings import PROJECT_ROOT, Settings


def sandbox_environment(contract: dict[str, Any]) -> dict[str, str]:
    """The environment that points the pipeline at a sandbox (as a deployment would at Entra ID and the APIs)."""
    env = {
        "DOTDYN_AUTHORITY": contract["authority"],
        "DOTDYN_CLIENT_ID": contract["client_id"],
        "DOTDYN_CLIENT_SECRET": contract["client_secret"],
        "DOTDYN_DATAVERSE_URL": contract["dataverse_url"],
        "DOTDYN_DOTDIGITAL_URL": contract["dotdigital_url"],
        "DOTDYN_CA_BUNDLE": contract["ca_cert"],
    }
    env.update({account["secret_name"]: account["api_password"] for account in contract["accounts"]})
    return env


@contextmanager
def _sandbox(settings: Settings, sandbox_dir: str | None) -> Iterator[dict[str, Any]]:
    from dotdyn_pipeline.sandbox.context import SandboxSettings
    from dotdyn_pipeline.sandbox.process import read_contract, running_sandbox

    if sandbox_dir:  # one already serving: use it and leave it running
        yield read_contract(Path(sandbox_dir))
        return
    with running_sandbox(settings.home / "sandbox", SandboxSettings()) as contract:
        yield contract


def run_demo(sandbox_dir: str | None = None, ui: bool = False) -> int:
    """Serve (or use) the sandbox, materialize every asset, print the summary; with `ui`, start Dagster's UI."""
    import dagster as dg

    settings = Settings.from_env()
    prepare_dagster_home(settings)
    with _sandbox(settings, sandbox_dir) as contract:
        os.environ.update(sandbox_environment(contract))
        from dotdyn_pipeline.definitions import defs

        with dg.DagsterInstance.get() as instance:
            result = defs.resolve_implicit_global_asset_job_def().execute_in_process(instance=instance)
            print(summary(result))
        if ui:
            print("Dagster UI on http://127.0.0.1:3000 (Ctrl-C stops it and the sandbox)")
            return subprocess.call([sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml",
                                    "-h", "127.0.0.1", "-p", "3000"], cwd=PROJECT_ROOT)
    return 0 if result.success else 1


def summary(result: Any) -> str:
    """A few lines a person reads after the demo: each asset and its numeric metadata."""
    lines = [f"run {result.run_id}: {'succeeded' if result.success else 'FAILED'}"]
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        facts = ", ".join(f"{key}={value.value}" for key, value in materialization.metadata.items())
        lines.append(f"  {materialization.asset_key.to_user_string()}"
                     f"{'[' + materialization.partition + ']' if materialization.partition else ''}: {facts}")
    return "\n".join(lines)
