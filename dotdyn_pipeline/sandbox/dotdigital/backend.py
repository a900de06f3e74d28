"""What REST, SOAP and the control routes share: the accounts and their stores, imports, sends, limits."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import shutil
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from dotdyn_pipeline.sandbox.context import SandboxContext
from dotdyn_pipeline.sandbox.dotdigital.engagement import seed_account
from dotdyn_pipeline.sandbox.dotdigital.imports import Imports
from dotdyn_pipeline.sandbox.dotdigital.limits import RateLimits, Verdict
from dotdyn_pipeline.sandbox.dotdigital.sends import DEFAULT_TIME_SCALE, Sends
from dotdyn_pipeline.sandbox.dotdigital.store import AccountStore, Pager
from dotdyn_pipeline.sandbox.people import EmailAccount

NAME = "dotdigital"


@dataclass
class Account:
    """One Dotdigital account: its API user and its data."""

    index: int
    login: EmailAccount
    store: AccountStore

    @property
    def id(self) -> int:
        return 100_001 + self.index


class Backend:
    """The Dotdigital stand-in's state, built (and seeded) once when the sandbox starts."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.url = ctx.urls[NAME]
        self.faults = ctx.faults[NAME]
        folder = ctx.directory / NAME
        shutil.rmtree(folder, ignore_errors=True)  # every start is a fresh, seeded account base
        folder.mkdir(parents=True)
        anchor = datetime.now(UTC).replace(second=0, microsecond=0)
        activities = ctx.settings.options.get("dotdigital.activities")
        self.accounts: list[Account] = []
        for index, login in enumerate(ctx.accounts):
            account = Account(index, login, AccountStore(folder / f"account-{index + 1}.db"))
            seed_account(account.store, ctx.settings, index, login.name,
                         int(activities) if activities and index == 0 else None, anchor)
            self.accounts.append(account)
        self.by_user = {account.login.api_user.lower(): account for account in self.accounts}
        self.limits = RateLimits(ctx.settings)
        self.pager = Pager()
        self.imports = Imports(self.faults)
        self.sends = Sends(ctx.settings.seed, float(ctx.settings.option("dotdigital.send_time_scale",
                                                                        str(DEFAULT_TIME_SCALE))))
        self._refused: Counter[tuple[str, str]] = Counter()  # refused sign-ins by (API user, SHA-256 of password)
        self._refused_lock = threading.Lock()

    def authenticate(self, request: Request) -> Account | None:
        """The account whose API user and password are in the Basic authorization header, or None."""
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        account = self.by_user.get(user.lower())
        if account is None or not hmac.compare_digest(password.encode(), account.login.api_password.encode()):
            with self._refused_lock:
                self._refused[user, hashlib.sha256(password.encode()).hexdigest()] += 1
            return None
        return account

    def refused_sign_ins(self) -> list[dict[str, Any]]:
        """Every sign-in refused so far, by API user and the SHA-256 digest of the password tried: which secrets
        reached the service, without keeping them."""
        with self._refused_lock:
            refused = sorted(self._refused.items())
        return [{"api_user": user, "password_sha256": digest, "count": count} for (user, digest), count in refused]

    def admit(self, account: Account, tier: str) -> Verdict:
        return self.limits.call(account.login.api_user, tier)

    def account_info(self, account: Account) -> dict[str, Any]:
        """ApiAccount: the properties the service reports, with this sandbox as the region's endpoint."""
        properties = [("Name", "String", account.login.name), ("MainEmail", "String", account.login.api_user),
                      ("ApiEndpoint", "String", f"{self.url}/"), ("APILocale", "String", "en-GB"),
                      ("AvailableEmailSendsCredits", "Int", "100000"), ("CurrencyCode", "String", "GBP"),
                      ("TimeZoneIana", "String", "Europe/London"), ("ListManagedUsers", "String", "")]
        if self.limits.mode == "hourly":
            used, remaining = self.limits.hourly_usage(account.login.api_user)
            properties += [("ApiCallsInLastHour", "Int", str(used)), ("ApiCallsRemaining", "Int", str(remaining))]
        return {"id": account.id, "properties": [{"name": n, "type": t, "value": v} for n, t, v in properties]}

    def account(self, key: str) -> Account | None:
        """An account by API user or by 1-based number (control routes)."""
        if key.isdigit() and 0 < int(key) <= len(self.accounts):
            return self.accounts[int(key) - 1]
        return self.by_user.get(key.lower())

    def shutdown(self) -> None:
        self.imports.shutdown()
        self.sends.shutdown()
