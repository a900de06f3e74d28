"""Access tokens for the Dataverse Web API from msal's ConfidentialClientApplication (client credentials).

The authority and the CA bundle are configuration, so the same code talks to Entra ID and to any
OpenID-compliant stand-in. The token is kept here and renewed ahead of its expiry; after a 401 the client
calls `invalidate()` and the next `token()` asks the authority again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import msal

from dotdyn_pipeline.connectors.dataverse.errors import DataverseAuthError, scrub
from dotdyn_pipeline.connectors.http import CallCounter, tls_verify

#: Entra ID hosts msal knows; for any other authority msal must not ask Microsoft's instance discovery.
MICROSOFT_AUTHORITY_HOSTS = frozenset({
    "login.microsoftonline.com", "login.microsoftonline.us", "login-us.microsoftonline.com",
    "login.chinacloudapi.cn", "login.partner.microsoftonline.cn",
})
#: Renew this long before expiry at most (msal's own margin), or at a fifth of a short token's life.
RENEW_MARGIN = 300.0


def renewal_time(acquired_at: float, lifetime: float) -> float:
    """When to renew a token that lives `lifetime` seconds: five minutes early, or a fifth of a short life."""
    return acquired_at + lifetime - min(RENEW_MARGIN, lifetime / 5)


class TokenSource(Protocol):
    """What the client needs from an authenticator."""

    def token(self) -> str: ...

    def invalidate(self) -> None: ...

    def secrets(self) -> tuple[str, ...]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ClientCredentials:
    """An app registration: a client secret, or a certificate's PEM private key and SHA-1 thumbprint."""

    authority: str  # e.g. https://login.microsoftonline.com/<tenant id>
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    thumbprint: str | None = None

    def msal_credential(self) -> str | dict[str, str]:
        if self.client_secret:
            return self.client_secret
        if self.private_key and self.thumbprint:
            return {"private_key": self.private_key, "thumbprint": self.thumbprint}
        raise ValueError("configure a client secret, or a certificate private key and thumbprint")


class _MsalTransport(httpx.Client):
    """httpx as msal's HTTP client. msal hands a certificate's client assertion over as bytes, which httpx
    would form-encode as "b'...'"; they are sent as text. (msal's default, requests, lets REQUESTS_CA_BUNDLE
    override the CA bundle it is given, hence httpx.)"""

    def post(self, url: Any, *, data: Any = None, **kwargs: Any) -> httpx.Response:
        if isinstance(data, dict):
            data = {name: value.decode() if isinstance(value, bytes) else value for name, value in data.items()}
        return super().post(url, data=data, **kwargs)


class MsalTokenSource:
    """Client-credentials tokens for `{org_url}/.default`, cached and renewed before they expire."""

    def __init__(self, credentials: ClientCredentials, org_url: str, *, ca_bundle: str | None = None,
                 counter: CallCounter | None = None, clock: Callable[[], float] = time.time) -> None:
        self._credentials, self._ca_bundle = credentials, ca_bundle
        self._scopes = [org_url.rstrip("/") + "/.default"]
        self._counter = counter or CallCounter()
        self._clock = clock
        self._lock = threading.Lock()
        self._app: msal.ConfidentialClientApplication | None = None
        self._http: httpx.Client | None = None
        self._token: str | None = None
        self._renew_at = 0.0

    def __repr__(self) -> str:
        return f"MsalTokenSource(authority={self._credentials.authority!r}, scopes={self._scopes!r})"

    def token(self) -> str:
        """A bearer token that is not about to expire."""
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._acquire()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        """Forget the token (the service refused it); the next `token()` asks the authority."""
        with self._lock:
            self._token = None
            if self._app is not None:
                self._app.remove_tokens_for_client()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in messages: the token and the client secret."""
        return tuple(s for s in (self._token, self._credentials.client_secret, self._credentials.private_key)
                     if s)

    def _acquire(self) -> None:
        started = self._clock()
        try:
            result: dict[str, Any] = self._application().acquire_token_for_client(scopes=self._scopes)
        except (ValueError, httpx.HTTPStatusError) as exc:  # a wrong authority; transport errors are retried
            raise DataverseAuthError(f"token authority {self._credentials.authority}: "
                                     f"{scrub(str(exc), self.secrets())}") from None
        if "access_token" not in result:
            message = f"{result.get('error', 'no token')}: {result.get('error_description', '')}".strip()
            raise DataverseAuthError(scrub(message, self.secrets()), code=str(result.get("error", "")))
        if result.get("token_source") != "cache":
            self._counter.add("token")
        self._token = result["access_token"]
        self._renew_at = renewal_time(started, float(result.get("expires_in") or 0))

    def _application(self) -> msal.ConfidentialClientApplication:
        # Built on first use: msal fetches the authority's OpenID configuration in its constructor.
        if self._app is None:
            host = urlsplit(self._credentials.authority).hostname or ""
            self._http = _MsalTransport(verify=tls_verify(self._ca_bundle), timeout=30.0)
            self._app = msal.ConfidentialClientApplication(
                self._credentials.client_id,
                client_credential=self._credentials.msal_credential(),
                authority=self._credentials.authority,
                instance_discovery=host in MICROSOFT_AUTHORITY_HOSTS,
                http_client=self._http,
            )
            self._counter.add("token_discovery")
        return self._app
