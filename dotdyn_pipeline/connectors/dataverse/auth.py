"""Access tokens for the Dataverse Web API from msal's ConfidentialClientApplication (client credentials).

The authority and the CA bundle are configuration, so the same code talks to Entra ID, to AD FS (2019 or later)
and to any OpenID-compliant stand-in. msal tells them apart by the authority's first path segment: for AD FS
(`https://adfs.contoso.com/adfs`) it reads `{authority}/.well-known/openid-configuration`, for Entra ID
`{authority}/v2.0/.well-known/openid-configuration`, and posts to the token endpoint the document names. Either
is asked for one scope, `{org_url}/.default` unless configured otherwise (an AD FS farm may know the Web API
by another identifier). The token is kept here and renewed ahead of its expiry; after a 401 the client
calls `invalidate()` and the next `token()` asks the authority again. Sign-in is retried like any other call:
a throttled or unavailable authority (OpenID discovery or the token endpoint: 429, 5xx, a transient AADSTS
error, a dropped connection) is asked again after its Retry-After, or with backoff, within the retry policy.
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
from msal.exceptions import MsalServiceError

from dotdyn_pipeline.connectors.dataverse.errors import DataverseAuthError, scrub
from dotdyn_pipeline.connectors.http import (
    RETRY_PREFIX,
    CallCounter,
    Retry,
    RetryPolicy,
    retry_after_seconds,
    tls_verify,
)

#: Entra ID hosts msal knows; for any other authority msal must not ask Microsoft's instance discovery.
MICROSOFT_AUTHORITY_HOSTS = frozenset({
    "login.microsoftonline.com", "login.microsoftonline.us", "login-us.microsoftonline.com",
    "login.chinacloudapi.cn", "login.partner.microsoftonline.cn",
})
#: Renew this long before expiry at most (msal's own margin), or at a fifth of a short token's life.
RENEW_MARGIN = 300.0
#: Error codes of a token response that say "try again" (OAuth 2.0 and Entra ID's documented transient ones).
TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
#: Seconds msal answers a repeated token request from its own memory after a 429 or 5xx without Retry-After
#: (its RetryAfterParser's default): asking sooner would only be refused again without reaching the authority.
MSAL_THROTTLE_SECONDS = 5.0


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
    override the CA bundle it is given, hence httpx.) The last response's status and Retry-After are kept:
    msal reports a refusal without them, and they decide whether and when to ask again."""

    last_status: int | None = None
    last_retry_after: float | None = None
    last_method = ""

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        self.last_status, self.last_retry_after, self.last_method = None, None, request.method
        response = super().send(request, **kwargs)
        self.last_status = response.status_code
        self.last_retry_after = retry_after_seconds(response.headers.get("retry-after"))
        return response

    def post(self, url: Any, *, data: Any = None, **kwargs: Any) -> httpx.Response:
        if isinstance(data, dict):
            data = {name: value.decode() if isinstance(value, bytes) else value for name, value in data.items()}
        return super().post(url, data=data, **kwargs)

    def transient(self) -> Retry | None:
        """When the last answer was a throttled or unavailable service, when to ask again."""
        if self.last_status is None or not (self.last_status == 429 or self.last_status >= 500):
            return None
        after = self.last_retry_after
        if after is None and self.last_method == "POST":  # the token endpoint, which msal throttles itself
            after = MSAL_THROTTLE_SECONDS
        return Retry(f"sign_in_unavailable: HTTP {self.last_status}", after=after)


def is_adfs(authority: str) -> bool:
    """Whether msal takes `authority` for AD FS: its path's first segment is `adfs`."""
    return urlsplit(authority).path.strip("/").split("/")[0].lower() == "adfs"


def discovery_url(authority: str) -> str:
    """Where msal reads the OpenID configuration of `authority` (AD FS has no `/v2.0`)."""
    base = authority.rstrip("/")
    return f"{base}{'' if is_adfs(base) else '/v2.0'}/.well-known/openid-configuration"


class MsalTokenSource:
    """Client-credentials tokens for `scope` (default `{org_url}/.default`), cached and renewed before they expire."""

    def __init__(self, credentials: ClientCredentials, org_url: str, *, scope: str | None = None,
                 ca_bundle: str | None = None, counter: CallCounter | None = None,
                 clock: Callable[[], float] = time.time, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._credentials, self._ca_bundle = credentials, ca_bundle
        self._scopes = [scope or org_url.rstrip("/") + "/.default"]
        self._counter = counter or CallCounter()
        self._clock = clock
        self._retry, self._sleep = retry or RetryPolicy(), sleep
        self._lock = threading.Lock()
        self._app: msal.ConfidentialClientApplication | None = None
        self._http: _MsalTransport | None = None
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
        """Ask the authority for a token, again after a transient refusal, as the retry policy allows."""
        waited = 0.0
        for attempt in range(1, self._retry.max_attempts + 1):
            retry = self._try_acquire()
            if retry is None:
                return
            wait = retry.after if retry.after is not None else self._retry.backoff(attempt)
            if attempt == self._retry.max_attempts or waited + wait > self._retry.max_total_wait:
                break
            self._counter.add(f"{RETRY_PREFIX}{retry.reason.split(':')[0]}")
            self._sleep(wait)
            waited += wait
        raise DataverseAuthError(f"sign-in at {self._credentials.authority} failed after {attempt} attempts: "
                                 f"{scrub(retry.reason, self.secrets())}", code="temporarily_unavailable")

    def _try_acquire(self) -> Retry | None:
        """One attempt: None once a token is held, a Retry for a transient refusal; a final refusal raises."""
        started = self._clock()
        try:
            result: dict[str, Any] = self._application().acquire_token_for_client(scopes=self._scopes)
        except httpx.TransportError as exc:
            return Retry(f"sign_in_unreachable: {type(exc).__name__}")
        except (ValueError, KeyError, httpx.HTTPStatusError, MsalServiceError) as exc:
            if self._http is not None and (retry := self._http.transient()) is not None:
                return retry
            raise DataverseAuthError(self._refusal(exc)) from None
        if "access_token" not in result:
            message = f"{result.get('error', 'no token')}: {result.get('error_description', '')}".strip()
            retry = self._http.transient() if self._http is not None else None
            if retry is not None or result.get("error") in TRANSIENT_ERRORS:
                return retry or Retry(f"sign_in_unavailable: {result.get('error')}", after=MSAL_THROTTLE_SECONDS)
            raise DataverseAuthError(scrub(message, self.secrets()), code=str(result.get("error", "")))
        if result.get("token_source") != "cache":
            self._counter.add("token")
        self._token = result["access_token"]
        self._renew_at = renewal_time(started, float(result.get("expires_in") or 0))
        return None

    def _refusal(self, exc: Exception) -> str:
        """What went wrong, for the error: an unusable OpenID configuration names where it was asked for."""
        authority = self._credentials.authority
        status = self._http.last_status if self._http is not None else None
        if self._app is None and status is not None:  # msal's constructor read the discovery document
            return (f"the authority {authority} gave no usable OpenID configuration at {discovery_url(authority)} "
                    f"(HTTP {status}): an Entra ID authority is https://login.microsoftonline.com/<tenant id>, "
                    "an AD FS one https://<AD FS host>/adfs")
        return f"token authority {authority}: {scrub(str(exc), self.secrets())}"

    def _application(self) -> msal.ConfidentialClientApplication:
        # Built on first use: msal fetches the authority's OpenID configuration in its constructor.
        if self._app is None:
            host = urlsplit(self._credentials.authority).hostname or ""
            if self._http is not None:  # an earlier attempt's, whose discovery failed
                self._http.close()
            self._http = _MsalTransport(verify=tls_verify(self._ca_bundle), timeout=30.0)
            self._app = msal.ConfidentialClientApplication(
                self._credentials.client_id,
                client_credential=self._credentials.msal_credential(),
                authority=self._credentials.authority.rstrip("/"),  # msal keeps a trailing / in its discovery URL
                instance_discovery=host in MICROSOFT_AUTHORITY_HOSTS,
                http_client=self._http,
            )
            self._counter.add("token_discovery")
        return self._app
