"""Placeholder until this stand-in is written: every request answers 501."""

from starlette.applications import Starlette
from starlette.responses import JSONResponse

from dotdyn_pipeline.sandbox.context import SandboxContext, Service


def build(ctx: SandboxContext) -> Service:
    async def not_implemented(scope, receive, send):
        await JSONResponse({"error": "not implemented"}, status_code=501)(scope, receive, send)

    return Service(name=__name__, app=not_implemented,
                   render_fault=lambda rule, request: JSONResponse({}, status_code=503))
