"""What every stand-in is built from (`SandboxContext`) and what it gives back (`Service`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.routing import BaseRoute

from dotdyn_pipeline.sandbox.faults import FaultPlan, Renderer
from dotdyn_pipeline.sandbox.people import EmailAccount, email_accounts, record_id


@dataclass(frozen=True)
class SandboxSettings:
    """Sizes and switches of one sandbox; service-specific switches go in `options` (`--option key=value`)."""

    seed: int = 7
    contacts: int = 2_000
    leads: int = 500
    accounts: int = 200
    email_accounts: int = 2
    days: int = 30  # how far back generated engagement reaches
    token_lifetime: int = 3_600  # seconds an access token lives
    bare: bool = False  # Dataverse without the solution: Microsoft's tables and the seeded people only
    options: dict[str, str] = field(default_factory=dict)

    def option(self, name: str, default: str) -> str:
        return self.options.get(name, default)


@dataclass
class SandboxContext:
    """The shared facts of a running sandbox: where each service listens, who may log in, its faults."""

    settings: SandboxSettings
    directory: Path
    urls: dict[str, str]  # service name -> base URL, e.g. "https://127.0.0.1:50123"
    faults: dict[str, FaultPlan]
    shared: dict[str, Any] = field(default_factory=dict)  # objects services share (token registry ...)

    @property
    def tenant_id(self) -> str:
        return record_id(self.settings.seed, "tenant", 0)

    @property
    def client_id(self) -> str:
        return record_id(self.settings.seed, "client", 0)

    @property
    def client_secret(self) -> str:
        return "sbx~" + hashlib.blake2b(f"{self.settings.seed}:secret".encode(), digest_size=18).hexdigest()

    @property
    def accounts(self) -> list[EmailAccount]:
        return email_accounts(self.settings.seed, self.settings.email_accounts)


@dataclass
class Service:
    """One stand-in: its ASGI app, how it renders vendor-shaped faults, its control routes and contract keys."""

    name: str
    app: Callable[..., Any]
    render_fault: Renderer
    control_routes: list[BaseRoute] = field(default_factory=list)  # served under /{name}/ on the control URL
    contract: dict[str, Any] = field(default_factory=dict)  # keys it adds to sandbox.json
    on_shutdown: Callable[[], None] | None = None
