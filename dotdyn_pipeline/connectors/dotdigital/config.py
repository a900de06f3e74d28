"""How to reach one Dotdigital account: credentials, endpoints, transport, paging, import and retry settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from dotdyn_pipeline.connectors.http import RetryPolicy

#: Region discovery starts here whatever the account's region (account-info names the right endpoint).
DEFAULT_BASE_URL = "https://r1-api.dotdigital.com"
#: The documented upload limit of one bulk import file is 50 MB; stay a little under it.
IMPORT_LIMIT_BYTES = 50_000_000
DEFAULT_IMPORT_CHUNK_BYTES = 49_000_000
#: Dotdigital refuses more than 25 active imports per account (ERROR_IMPORT_TOOMANYACTIVEIMPORTS).
MAX_ACTIVE_IMPORTS = 25


@dataclass(frozen=True)
class DotdigitalConfig:
    """Settings of one account's client. `api_password` never appears in reprs, logs or errors."""

    api_user: str
    api_password: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    transport: str = "rest"  # "rest" (REST v2 over httpx) or "soap" (SOAP v2 over zeep)
    soap_address: str | None = None  # the SOAP endpoint; default: the account's API endpoint + /v2/Api.svc
    ca_bundle: str | None = None  # CA file to trust; None = the system's CAs
    discover_region: bool = True  # re-point at account-info's ApiEndpoint once, when connecting
    timeout: float = 121.0  # seconds; Dotdigital asks clients to allow 121 s before timing out
    page_size: int = 2000  # select: the most any endpoint takes, capped per endpoint at its documented maximum
    import_chunk_bytes: int = DEFAULT_IMPORT_CHUNK_BYTES
    max_active_imports: int = 10  # imports in progress at once (the account allows 25 across all clients)
    poll_initial: float = 2.0  # seconds before the first import-status poll, until a throughput is learned
    poll_factor: float = 1.1  # backoff between import-status polls, relative to how long the imports have run
    poll_max: float = 30.0
    import_timeout: float = 6 * 3600.0  # give up waiting for one import (or bulk removal) after this long
    deletion_chunk: int = 1000  # contacts removed from a book by one bulk deletion (no limit is documented)
    lookup_chunk: int = 1000  # contacts looked up by address in one call (no limit is documented)
    quota_wait: float = 600.0  # wait after ERROR_APIUSAGE_EXCEEDED when no reset time is given
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_total_wait=2 * 3600.0))

    def __post_init__(self) -> None:
        if self.transport not in ("rest", "soap"):
            raise ValueError(f"transport must be 'rest' or 'soap', not {self.transport!r}")
        if not 0 < self.import_chunk_bytes <= IMPORT_LIMIT_BYTES:
            raise ValueError(f"import_chunk_bytes must be within 1..{IMPORT_LIMIT_BYTES}")
        if not 0 < self.max_active_imports <= MAX_ACTIVE_IMPORTS:
            raise ValueError(f"max_active_imports must be within 1..{MAX_ACTIVE_IMPORTS}")
        if self.page_size < 1:
            raise ValueError("page_size must be positive")
        if self.deletion_chunk < 1 or self.lookup_chunk < 1:
            raise ValueError("deletion_chunk and lookup_chunk must be positive")
