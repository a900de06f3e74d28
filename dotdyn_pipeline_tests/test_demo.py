"""`dotdyn demo` as a person runs it: what it says when the services refuse, and why an account failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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
