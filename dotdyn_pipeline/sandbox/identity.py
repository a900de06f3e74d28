"""Stand-in for the Microsoft identity platform (Entra ID): OpenID discovery and client-credentials tokens.

Served at `https://127.0.0.1:PORT/{tenant}` (the contract's `authority`), so that the real
`msal.ConfidentialClientApplication(authority=..., instance_discovery=False)` works unchanged:

- `GET /{tenant}/v2.0/.well-known/openid-configuration` -> the discovery document msal reads.
- `POST /{tenant}/oauth2/v2.0/token` (form body, `grant_type=client_credentials`, `scope=<resource>/.default`,
  and either `client_secret` or a certificate `client_assertion`) -> `{"token_type": "Bearer", ...}`, or the
  documented `{"error": ..., "error_description": "AADSTS...: ..."}` body.

Access tokens are HS256-signed JWTs that expire after `settings.token_lifetime` seconds; the Dataverse
stand-in checks signature, expiry, audience and revocation through `token_issuer(ctx)`. The `token_expiry`
fault (taken by the Dataverse stand-in) and `POST {control_url}/identity/expire-tokens` revoke every token
issued so far, so the next data call answers 401.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dotdyn_pipeline.sandbox.context import SandboxContext, Service
from dotdyn_pipeline.sandbox.faults import FaultRule

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class TokenIssuer:
    """Issues and checks the sandbox's access tokens; shared by identity and Dataverse through ctx.shared."""

    lifetime: int
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    revoked_before_ms: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, issuer: str, tenant_id: str, client_id: str, audience: str) -> str:
        now = time.time()
        claims = {"aud": audience, "iss": issuer, "iat": int(now), "nbf": int(now), "exp": int(now) + self.lifetime,
                  "appid": client_id, "tid": tenant_id, "sub": client_id, "oid": client_id, "ver": "1.0",
                  "uti": uuid.uuid4().hex, "iat_ms": int(now * 1000)}
        return jwt.encode(claims, self.key, algorithm="HS256")

    def check(self, token: str, audience: str) -> str | None:
        """None if `token` is valid for `audience`, else why not (for the WWW-Authenticate header)."""
        try:
            claims = jwt.decode(token, self.key, algorithms=["HS256"], audience=audience,
                                options={"require": ["exp", "aud", "iat_ms"]}, leeway=0)
        except jwt.ExpiredSignatureError:
            return "The token is expired"
        except jwt.InvalidAudienceError:
            return "The audience of the token is not valid"
        except jwt.PyJWTError:
            return "The token is malformed or its signature is not valid"
        with self._lock:
            if claims["iat_ms"] <= self.revoked_before_ms:
                return "The token has been revoked"
        return None

    def revoke_all(self) -> None:
        with self._lock:
            self.revoked_before_ms = int(time.time() * 1000)


def token_issuer(ctx: SandboxContext) -> TokenIssuer:
    """The sandbox's one token issuer (created by whichever service asks first)."""
    return ctx.shared.setdefault("identity.tokens", TokenIssuer(ctx.settings.token_lifetime))


def authority(ctx: SandboxContext) -> str:
    return f"{ctx.urls['identity']}/{ctx.tenant_id}"


def _client_certificate(directory: Path) -> tuple[x509.Certificate, dict[str, str]]:
    """A certificate registered for the sandbox's app, for `client_assertion` logins; its files' paths."""
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dotdyn sandbox client")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365)).sign(key, hashes.SHA256()))
    key_path, cert_path = directory / "client-key.pem", directory / "client-cert.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, {"client_cert": str(cert_path), "client_cert_key": str(key_path),
                  "client_cert_thumbprint": cert.fingerprint(hashes.SHA1()).hex().upper()}  # noqa: S303


def _aad_error(status: int, error: str, code: int, text: str) -> JSONResponse:
    """The identity platform's error body: `error`, `error_description` with AADSTS code, ids and time."""
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    description = f"AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {stamp}"
    return JSONResponse({"error": error, "error_description": description, "error_codes": [code],
                         "timestamp": stamp, "trace_id": trace, "correlation_id": correlation,
                         "error_uri": "https://login.microsoftonline.com/error?code=" + str(code)},
                        status_code=status)


def _thumbprint_matches(header: dict, cert: x509.Certificate) -> bool:
    """Compare the x5t / x5t#S256 header with the certificate (msal sends padded standard base64)."""
    def decoded(value: str) -> bytes:
        value = value.replace("-", "+").replace("_", "/")
        return base64.b64decode(value + "=" * (-len(value) % 4))

    try:
        if "x5t#S256" in header:
            return hmac.compare_digest(decoded(header["x5t#S256"]), cert.fingerprint(hashes.SHA256()))
        if "x5t" in header:
            return hmac.compare_digest(decoded(header["x5t"]), cert.fingerprint(hashes.SHA1()))  # noqa: S303
    except ValueError:
        return False
    return True


def build(ctx: SandboxContext) -> Service:
    tokens = token_issuer(ctx)
    certificate, cert_files = _client_certificate(ctx.directory / "identity")
    tenant = ctx.tenant_id

    def urls() -> dict[str, str]:
        base = authority(ctx)
        return {"issuer": f"{base}/v2.0", "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{base}/discovery/v2.0/keys"}

    def unknown_tenant(request: Request) -> JSONResponse | None:
        name = request.path_params["tenant"]
        if name == tenant:
            return None
        return _aad_error(400, "invalid_request", 90002,
                          f"Tenant '{name}' not found. Check to make sure you have the correct tenant ID and are "
                          "signing into the correct cloud.")

    async def discovery(request: Request) -> JSONResponse:
        if (error := unknown_tenant(request)) is not None:
            return error
        return JSONResponse({
            **urls(), "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                                "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "subject_types_supported": ["pairwise"], "id_token_signing_alg_values_supported": ["RS256"],
            "grant_types_supported": ["client_credentials"], "tenant_region_scope": "EU",
            "cloud_instance_name": "sandbox", "request_uri_parameter_supported": False,
        })

    async def keys(request: Request) -> JSONResponse:
        return JSONResponse({"keys": []})  # access tokens are for the sandbox's own resources only

    def client_authenticated(form) -> JSONResponse | None:
        if form.get("client_assertion"):
            return check_assertion(form)
        secret = form.get("client_secret")
        if not secret:
            return _aad_error(401, "invalid_client", 7000218, "The request body must contain the following "
                              "parameter: 'client_assertion' or 'client_secret'.")
        if not hmac.compare_digest(secret.encode(), ctx.client_secret.encode()):
            return _aad_error(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret "
                              "being sent in the request is the client secret value, not the client secret ID, "
                              f"for a secret added to app '{ctx.client_id}'.")
        return None

    def check_assertion(form) -> JSONResponse | None:
        assertion = form["client_assertion"]
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return _aad_error(400, "invalid_request", 50027, "Invalid client_assertion_type.")
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, certificate.public_key(), algorithms=["RS256", "PS256"],
                                audience=urls()["token_endpoint"], options={"require": ["exp", "iss", "sub"]})
        except jwt.PyJWTError:
            return _aad_error(401, "invalid_client", 700027, "Client assertion failed signature validation.")
        if claims["iss"] != ctx.client_id or claims["sub"] != ctx.client_id or not _thumbprint_matches(
                header, certificate):
            return _aad_error(401, "invalid_client", 700027, "Client assertion contains an invalid signature "
                              "or was issued for another application.")
        return None

    async def token(request: Request) -> JSONResponse:
        if (error := unknown_tenant(request)) is not None:
            return error
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))  # x-www-form-urlencoded
        if form.get("grant_type") != "client_credentials":
            return _aad_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type "
                              f"'{form.get('grant_type')}'.")
        if form.get("client_id") != ctx.client_id:
            return _aad_error(400, "unauthorized_client", 700016, f"Application with identifier "
                              f"'{form.get('client_id')}' was not found in the directory '{tenant}'.")
        if (error := client_authenticated(form)) is not None:
            return error
        scopes = (form.get("scope") or "").split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            return _aad_error(400, "invalid_scope", 1002012, f"The provided value for scope "
                              f"{form.get('scope')} is not valid. Client credential flows must have a scope value "
                              "with /.default suffixed to the resource identifier (application ID URI).")
        resource = scopes[0].removesuffix("/.default").rstrip("/")
        if resource not in resources():
            return _aad_error(400, "invalid_resource", 500011, f"The resource principal named {resource} was not "
                              f"found in the tenant named {tenant}.")
        access = tokens.issue(urls()["issuer"], tenant, ctx.client_id, resource)
        lifetime = ctx.settings.token_lifetime
        return JSONResponse({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                             "access_token": access},
                            headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    def resources() -> set[str]:
        return {url for name, url in ctx.urls.items() if name not in ("identity", "control")}

    async def expire_tokens(request: Request) -> JSONResponse:
        tokens.revoke_all()
        return JSONResponse({"revoked_before_ms": tokens.revoked_before_ms})

    def render_fault(rule: FaultRule, request: Request) -> JSONResponse:
        if rule.kind == "throttle":
            response = _aad_error(429, "temporarily_unavailable", 90033, "A transient error has occurred. "
                                  "Please try again.")
            response.headers["Retry-After"] = str(int(rule.retry_after or 1))
            return response
        return _aad_error(rule.status or 503, "temporarily_unavailable", 50196,
                          "The server is temporarily unavailable. Please try again.")

    app = Starlette(routes=[
        Route("/{tenant}/v2.0/.well-known/openid-configuration", discovery),
        Route("/{tenant}/discovery/v2.0/keys", keys),
        Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
    ])
    return Service(name="identity", app=app, render_fault=render_fault,
                   control_routes=[Route("/expire-tokens", expire_tokens, methods=["POST"])],
                   contract={"authority": authority(ctx), **cert_files})

