"""A virtual environment per third-party Dataverse client, built from its pinned requirements file.

The clients pin libraries the project cannot share (pydantic 1, pandas 3, old requests-cache...), so each
gets its own environment under `.dotdyn/client-venvs/<name>`, built once and reused for as long as its
requirements file is unchanged (the file's hash is kept beside the environment and written last, so an
interrupted build is rebuilt). A driver script of ours runs inside it as a subprocess and prints JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".dotdyn" / "client-venvs"
HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements"
DRIVERS = HERE / "drivers"


def client_python(name: str) -> Path:
    """The Python of the environment for `requirements/<name>.txt`, built first when missing or stale."""
    requirements = REQUIREMENTS / f"{name}.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    home = CACHE / name
    stamp = home / "requirements.sha256"
    python = home / "bin" / "python"
    if stamp.exists() and stamp.read_text() == digest and python.exists():
        return python
    shutil.rmtree(home, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              "--no-input", "-r", str(requirements)], capture_output=True, text=True)
    if install.returncode != 0:
        raise RuntimeError(f"pip could not install {requirements.name}:\n{install.stderr[-4000:]}")
    stamp.write_text(digest)
    return python


def run_driver(python: Path, driver: str, contract: dict[str, Any], scenario: str, **arguments: Any) -> Any:
    """Runs `drivers/<driver>_driver.py <scenario>` in the client's environment; the JSON it prints.

    The driver reads the sandbox contract and the arguments as JSON on stdin and trusts the sandbox CA
    through REQUESTS_CA_BUNDLE and SSL_CERT_FILE, the variables the clients' HTTP libraries read.
    """
    environment = {**os.environ, "REQUESTS_CA_BUNDLE": contract["ca_cert"], "SSL_CERT_FILE": contract["ca_cert"],
                   "PYTHONDONTWRITEBYTECODE": "1"}
    environment.pop("PYTHONPATH", None)
    done = subprocess.run([str(python), str(DRIVERS / f"{driver}_driver.py"), scenario],
                          input=json.dumps({"contract": contract, "arguments": arguments}), capture_output=True,
                          text=True, env=environment, timeout=600)
    if done.returncode != 0:
        raise AssertionError(f"{driver} {scenario} failed (exit {done.returncode}):\n{done.stderr[-6000:]}")
    return json.loads(done.stdout)
