"""Stand-in for Entra ID (the Microsoft identity platform) or AD FS: OpenID discovery and client-credentials tokens.

Options (`dotdyn sandbox up --option key=value`):
- `identity.kind` (`entra` | `adfs`, default `entra`): which authority is served.

Entra ID is served at `https://127.0.0.1:PORT/{tenant}` (the contract's `authority`), so that the real
`msal.ConfidentialClientApplication(authority=..., instance_discovery=False)` works unchanged:

- `GET /{tenant}/v2.0/.well-known/openid-configuration` -> the discovery document msal reads.
- `POST /{tenant}/oauth2/v2.0/token` (form body, `grant_type=client_credentials`, `scope=<resource>/.default`,
  and either `client_secret` or a certificate `client_assertion`) -> `{"token_type": "Bearer", ...}`, or the
  documented `{"error": ..., "error_description": "AADSTS...: ..."}` body.

AD FS (2019 and later, as an on-premises Dynamics 365 signs in) is served at `https://127.0.0.1:PORT/adfs`, the
path msal recognises as AD FS, so that it asks no `/v2.0`:

- `GET /adfs/.well-known/openid-configuration` -> AD FS's discovery document (endpoints end in `/`).
- `POST /adfs/oauth2/token/` (also without the last `/`), the same form; the relying party is the one whose
  identifier the `resource` parameter (MS-OAPX) or the scope names, alone or followed by `/<scope>` such as
  `/.default` -> `{"token_type": "bearer", ...}`, or an error in OAuth 2.0's shape (`error`,
  `error_description`) without Entra ID's AADSTS codes and trace ids.

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


KINDS = ("entra", "adfs")


def identity_kind(ctx: SandboxContext) -> str:
    """`entra` or `adfs`, as the option `identity.kind` asks; another value stops the sandbox at start."""
    kind = ctx.settings.option("identity.kind", "entra")
    if kind not in KINDS:
        raise ValueError(f"identity.kind={kind!r}: must be one of {', '.join(KINDS)}")
    return kind


def authority(ctx: SandboxContext) -> str:
    """The authority clients are configured with: `{identity}/{tenant}`, or `{identity}/adfs` for AD FS."""
    return f"{ctx.urls['identity']}/{'adfs' if identity_kind(ctx) == 'adfs' else ctx.tenant_id}"


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
    adfs = identity_kind(ctx) == "adfs"

    def refuse(status: int, error: str, code: int, text: str) -> JSONResponse:
        """A refusal in the authority's shape: Entra ID's with its AADSTS `code`, AD FS's as OAuth 2.0 has it."""
        if adfs:
            return JSONResponse({"error": error, "error_description": text}, status_code=status)
        return _aad_error(status, error, code, text)

    def urls() -> dict[str, str]:
        base = authority(ctx)
        if adfs:
            return {"issuer": base, "token_endpoint": f"{base}/oauth2/token/",
                    "authorization_endpoint": f"{base}/oauth2/authorize/",
                    "device_authorization_endpoint": f"{base}/oauth2/devicecode",
                    "jwks_uri": f"{base}/discovery/keys", "userinfo_endpoint": f"{base}/userinfo/",
                    "end_session_endpoint": f"{base}/oauth2/logout"}
        return {"issuer": f"{base}/v2.0", "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{base}/discovery/v2.0/keys"}

    def unknown_tenant(request: Request) -> JSONResponse | None:
        name = request.path_params.get("tenant", tenant)  # AD FS has none
        if name == tenant:
            return None
        return _aad_error(400, "invalid_request", 90002,
                          f"Tenant '{name}' not found. Check to make sure you have the correct tenant ID and are "
                          "signing into the correct cloud.")

    async def discovery(request: Request) -> JSONResponse:
        if (error := unknown_tenant(request)) is not None:
            return error
        if adfs:
            return JSONResponse({
                **urls(), "access_token_issuer": f"{authority(ctx)}/services/trust",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic",
                                                          "private_key_jwt", "windows_client_authentication"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token",
                                             "code token", "code id_token token"],
                "response_modes_supported": ["query", "fragment", "form_post"],
                "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials",
                                          "urn:ietf:params:oauth:grant-type:jwt-bearer", "implicit", "password",
                                          "srv_challenge", "urn:ietf:params:oauth:grant-type:device_code",
                                          "device_code"],
                "subject_types_supported": ["pairwise"], "scopes_supported": ["openid", "profile", "email",
                                                                             "allatclaims", "aza"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "microsoft_multi_refresh_token": True, "capabilities": ["kdf_ver2"],
            })
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
            return refuse(401, "invalid_client", 7000218, "The request body must contain the following "
                          "parameter: 'client_assertion' or 'client_secret'.")
        if not hmac.compare_digest(secret.encode(), ctx.client_secret.encode()):
            return refuse(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret "
                          "being sent in the request is the client secret value, not the client secret ID, "
                          f"for a secret added to app '{ctx.client_id}'.")
        return None

    def check_assertion(form) -> JSONResponse | None:
        assertion = form["client_assertion"]
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return refuse(400, "invalid_request", 50027, "Invalid client_assertion_type.")
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, certificate.public_key(), algorithms=["RS256", "PS256"],
                                audience=urls()["token_endpoint"], options={"require": ["exp", "iss", "sub"]})
        except jwt.PyJWTError:
            return refuse(401, "invalid_client", 700027, "Client assertion failed signature validation.")
        if claims["iss"] != ctx.client_id or claims["sub"] != ctx.client_id or not _thumbprint_matches(
                header, certificate):
            return refuse(401, "invalid_client", 700027, "Client assertion contains an invalid signature "
                          "or was issued for another application.")
        return None

    async def token(request: Request) -> JSONResponse:
        if (error := unknown_tenant(request)) is not None:
            return error
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))  # x-www-form-urlencoded
        if form.get("grant_type") != "client_credentials":
            return refuse(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type "
                          f"'{form.get('grant_type')}'.")
        if form.get("client_id") != ctx.client_id:
            return refuse(400, "unauthorized_client", 700016, f"Application with identifier "
                          f"'{form.get('client_id')}' was not found in the directory '{tenant}'.")
        if (error := client_authenticated(form)) is not None:
            return error
        resource = relying_party(form) if adfs else entra_resource(form)
        if isinstance(resource, JSONResponse):
            return resource
        access = tokens.issue(urls()["issuer"], tenant, ctx.client_id, resource)
        lifetime = ctx.settings.token_lifetime
        answer = ({"access_token": access, "token_type": "bearer", "expires_in": lifetime} if adfs else
                  {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": access})
        return JSONResponse(answer, headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    def entra_resource(form: dict[str, str]) -> str | JSONResponse:
        """The resource of `scope=<resource>/.default`, or the identity platform's refusal."""
        scopes = (form.get("scope") or "").split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            return refuse(400, "invalid_scope", 1002012, f"The provided value for scope "
                          f"{form.get('scope')} is not valid. Client credential flows must have a scope value "
                          "with /.default suffixed to the resource identifier (application ID URI).")
        resource = scopes[0].removesuffix("/.default").rstrip("/")
        if resource not in resources():
            return refuse(400, "invalid_resource", 500011, f"The resource principal named {resource} was not "
                          f"found in the tenant named {tenant}.")
        return resource

    def relying_party(form: dict[str, str]) -> str | JSONResponse:
        """The relying party an AD FS request names, by `resource` or else by its one scope
        (`<identifier>[/<scope>]`); or AD FS's refusal."""
        asked = form.get("resource") or form.get("scope") or ""
        found = next((known for known in resources() if len(asked.split()) == 1 and (
            asked.rstrip("/") == known or asked.startswith(known + "/"))), None)
        return found or refuse(400, "invalid_scope", 0, f"No relying party trust has the identifier that '{asked}' "
                               "names. The scope (or resource) must name the web API's identifier, alone or "
                               "followed by /<scope>.")

    def resources() -> set[str]:
        return {url for name, url in ctx.urls.items() if name not in ("identity", "control")}

    async def expire_tokens(request: Request) -> JSONResponse:
        tokens.revoke_all()
        return JSONResponse({"revoked_before_ms": tokens.revoked_before_ms})

    def render_fault(rule: FaultRule, request: Request) -> JSONResponse:
        if rule.kind == "throttle":
            response = refuse(429, "temporarily_unavailable", 90033, "A transient error has occurred. "
                              "Please try again.")
            response.headers["Retry-After"] = str(int(rule.retry_after or 1))
            return response
        return refuse(rule.status or 503, "temporarily_unavailable", 50196,
                      "The server is temporarily unavailable. Please try again.")

    app = Starlette(routes=[
        Route("/adfs/.well-known/openid-configuration", discovery),
        Route("/adfs/discovery/keys", keys),
        Route("/adfs/oauth2/token/", token, methods=["POST"]),
        Route("/adfs/oauth2/token", token, methods=["POST"]),
    ] if adfs else [
        Route("/{tenant}/v2.0/.well-known/openid-configuration", discovery),
        Route("/{tenant}/discovery/v2.0/keys", keys),
        Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
    ])
    return Service(name="identity", app=app, render_fault=render_fault,
                   control_routes=[Route("/expire-tokens", expire_tokens, methods=["POST"])],
                   contract={"authority": authority(ctx), **cert_files})

