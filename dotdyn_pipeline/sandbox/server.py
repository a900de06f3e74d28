"""`dotdyn sandbox up`: serve every stand-in over HTTPS on loopback and write the contract file.

Each service listens on its own port (as the real ones live on their own hosts) and the control endpoint
on another. Once all are accepting connections, `DIR/sandbox.json` is written atomically; scripts wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from dotdyn_pipeline.sandbox import dataverse, dotdigital, identity
from dotdyn_pipeline.sandbox.context import SandboxContext, SandboxSettings, Service
from dotdyn_pipeline.sandbox.faults import FaultMiddleware, FaultPlan, rule_from_json
from dotdyn_pipeline.sandbox.tls import make_tls_files

SERVICE_BUILDERS = {"identity": identity.build, "dataverse": dataverse.build, "dotdigital": dotdigital.build}
CONTRACT_FILE = "sandbox.json"


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the sandbox, which stops all servers together."""

    @contextlib.contextmanager
    def capture_signals(self):  # noqa: D102
        yield


def _bind() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _control_app(ctx: SandboxContext, services: dict[str, Service]) -> Starlette:
    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "services": sorted(services)})

    async def list_faults(request: Request) -> JSONResponse:
        return JSONResponse({name: plan.describe() for name, plan in ctx.faults.items()})

    async def add_fault(request: Request) -> JSONResponse:
        name = request.path_params["service"]
        if name not in ctx.faults:
            return JSONResponse({"error": f"unknown service {name!r}"}, status_code=404)
        try:
            rule = rule_from_json(await request.json())
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        ctx.faults[name].add(rule)
        return JSONResponse({"service": name, "faults": ctx.faults[name].describe()}, status_code=201)

    async def clear_faults(request: Request) -> JSONResponse:
        names = [request.path_params["service"]] if "service" in request.path_params else list(ctx.faults)
        for name in names:
            ctx.faults[name].clear()
        return JSONResponse({"cleared": names})

    routes = [
        Route("/health", health),
        Route("/faults", list_faults),
        Route("/faults", clear_faults, methods=["DELETE"]),
        Route("/faults/{service}", add_fault, methods=["POST"]),
        Route("/faults/{service}", clear_faults, methods=["DELETE"]),
    ]
    routes += [Mount(f"/{name}", routes=service.control_routes) for name, service in services.items()]
    return Starlette(routes=routes)


async def serve(directory: Path, settings: SandboxSettings) -> None:
    """Serve until SIGINT or SIGTERM; write the contract file once every service is up."""
    directory = directory.resolve()
    contract_path = directory / CONTRACT_FILE
    contract_path.unlink(missing_ok=True)
    tls = make_tls_files(directory / "tls")
    sockets = {name: _bind() for name in [*SERVICE_BUILDERS, "control"]}
    ctx = SandboxContext(
        settings=settings, directory=directory,
        urls={name: f"https://127.0.0.1:{sock.getsockname()[1]}" for name, sock in sockets.items()},
        faults={name: FaultPlan(settings.seed) for name in SERVICE_BUILDERS},
    )
    with ThreadPoolExecutor(max_workers=len(SERVICE_BUILDERS)) as pool:  # each seeds its own data: overlap them
        built = {name: pool.submit(build, ctx) for name, build in SERVICE_BUILDERS.items()}
        services = {name: future.result() for name, future in built.items()}
    apps = {name: FaultMiddleware(service.app, ctx.faults[name], service.render_fault)
            for name, service in services.items()}
    apps["control"] = _control_app(ctx, services)

    servers = []
    for name, app in apps.items():
        config = uvicorn.Config(app, log_level="warning", ssl_certfile=str(tls.server_cert),
                                ssl_keyfile=str(tls.server_key), timeout_keep_alive=30, timeout_graceful_shutdown=2,
                                ssl_version=ssl.PROTOCOL_TLS_SERVER, access_log=False)
        servers.append((_Server(config), sockets[name]))

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: [setattr(s, "should_exit", True) for s, _ in servers])
    tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in servers]
    while not all(server.started for server, _ in servers):
        if any(task.done() for task in tasks):
            await asyncio.gather(*tasks)  # surfaces the error of the server that failed to start
            raise RuntimeError("a sandbox server stopped while starting")
        await asyncio.sleep(0.02)

    contract = {
        "ca_cert": str(tls.ca_cert),
        "tenant_id": ctx.tenant_id,
        "client_id": ctx.client_id,
        "client_secret": ctx.client_secret,
        "control_url": ctx.urls["control"],
        "seed": settings.seed,
        "accounts": [{"name": a.name, "api_user": a.api_user, "api_password": a.api_password,
                      "emailaccount_id": a.emailaccount_id, "secret_name": a.secret_name,
                      "transport": a.transport} for a in ctx.accounts],
    }
    for service in services.values():
        contract.update(service.contract)
    partial = contract_path.with_suffix(".json.partial")
    partial.write_text(json.dumps(contract, indent=2))
    partial.chmod(0o600)
    partial.replace(contract_path)
    try:
        await asyncio.gather(*tasks)
    finally:
        contract_path.unlink(missing_ok=True)
        for service in services.values():
            if service.on_shutdown:
                service.on_shutdown()


def run(directory: Path, settings: SandboxSettings) -> None:
    """Blocking entry point for the CLI."""
    asyncio.run(serve(directory, settings))
