"""`dotdyn demo` as a person runs it: what it says when the services refuse, and why an account failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from dotdyn_pipeline.bench.contract import control_http
from dotdyn_pipeline.sandbox.context import SandboxSettings
from dotdyn_pipeline.sandbox.process import CONTRACT_FILE, running_sandbox

SMALL = SandboxSettings(seed=3, contacts=60, leads=10, accounts=10, email_accounts=1, days=1)


def test_a_refused_sign_in_ends_the_demo_with_one_clear_line(tmp_path) -> None:
    with running_sandbox(tmp_path / "sandbox", SMALL) as sandbox:
        wrong = tmp_path / "misconfigured"  # the same sandbox, named with a client secret it does not know
        wrong.mkdir()
        (wrong / CONTRACT_FILE).write_text(json.dumps({**sandbox, "client_secret": "sbx~not-the-secret"}))
        env = {**os.environ, "DOTDYN_HOME": str(tmp_path / "home")}
        env.pop("DOTDYN_POSTGRES_URL", None)
        done = subprocess.run([sys.executable, "-m", "dotdyn_pipeline.cli", "demo", "--sandbox", str(wrong)],
                              env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("dotdyn demo: DataverseAuthError: ") and "invalid_client" in last
    assert "sbx~not-the-secret" not in done.stdout + done.stderr


def test_the_demo_processes_the_sends_it_schedules_in_dynamics(tmp_path) -> None:
    """After the syncs, a campaign send and three triggered sends are due in the sandbox's Dynamics; the demo runs
    them as the sensors would: the campaign goes to its list's members, two triggered emails go out and the one
    to a bad address fails with Dotdigital's reason, and the rows say so."""
    with running_sandbox(tmp_path / "sandbox", SMALL) as sandbox:
        env = {**os.environ, "DOTDYN_HOME": str(tmp_path / "home")}
        env.pop("DOTDYN_POSTGRES_URL", None)
        command = [sys.executable, "-m", "dotdyn_pipeline.cli", "demo", "--sandbox", str(tmp_path / "sandbox")]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        with control_http(sandbox) as control:
            sends = control.get("/dataverse/rows/esc_emailsends").raise_for_status().json()["value"]
            singles = control.get("/dataverse/rows/esc_emailsinglesends").raise_for_status().json()["value"]
            made = control.get("/dotdigital/accounts/1/sends", params={"type": "campaign"}).raise_for_status().json()
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line.strip() for line in done.stdout.split("sends due in Dynamics:")[1].strip().splitlines()]
    assert len(sends) == 1 and sends[0]["esc_status"] == "Sent" and len(made) == 1
    assert lines[0].startswith(f"campaign send '{sends[0]['esc_name']}': Sent, {sends[0]['esc_recipients']} recipients")
    assert made[0]["recipients"] == sends[0]["esc_recipients"] > 0
    assert sorted(row["esc_status"] for row in singles) == ["Failed", "Sent", "Sent"]
    assert lines[1] == "triggered sends: 3 due: {'failed': 1, 'sent': 2}"
