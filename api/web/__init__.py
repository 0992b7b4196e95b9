"""The web workspace for planners (issue #17): pages, map layers, run lists and downloads, offline API docs.

:func:`install` wires everything into the API app: the Jinja2 page at ``/``, the vendored assets at ``/static``
(Leaflet 1.9.4 with its licence), the read endpoints the pages need (``api.web.routes``), ``/docs`` and
``/redoc`` served from the ``fastapi-offline`` package's Swagger UI and ReDoc assets instead of a CDN, and the
OpenAPI ``securitySchemes`` entry for the ``X-API-Key`` header so ``/docs`` has an Authorize button.
Nothing here loads from the internet.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

API_DIR = Path(__file__).resolve().parents[1]
STATIC_DIR = API_DIR / "static"
TEMPLATES_DIR = API_DIR / "templates"
DOCS_ASSETS = "/static-offline-docs"
KEY_SCHEME = "APIKey"
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
PUBLIC_PATHS = frozenset({"/health"})
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
       "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:; connect-src 'self'; font-src 'self' data:; "
       "frame-ancestors 'self'")
"""Content-Security-Policy of the pages: the browser may load nothing from outside this server (ReDoc's bundle,
for one, would fetch its logo from the vendor's CDN)."""


def csp(tile_origin: str | None = None) -> str:
    """The pages' Content-Security-Policy; with the origin of a configured tile server (``PLANNER_TILE_URL``,
    :func:`api.limits.tile_layer`) its images are admitted too — only images, only from that origin."""
    if not tile_origin:
        return CSP
    return CSP.replace("img-src 'self' data: blob:", f"img-src 'self' data: blob: {tile_origin}")


def offline_html(resp: HTMLResponse, tile_origin: str | None = None) -> HTMLResponse:
    """``resp`` with the Content-Security-Policy that keeps the page on this server's origin (plus a configured
    tile server's, for images, when ``tile_origin`` is given)."""
    resp.headers["Content-Security-Policy"] = csp(tile_origin)
    return resp


def _docs_assets_dir() -> Path:
    """Folder of Swagger UI and ReDoc shipped by the ``fastapi-offline`` package (MIT; Swagger UI Apache-2.0)."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


@lru_cache(maxsize=1)
def _redoc_bundle() -> bytes:
    """ReDoc's bundle with its one hard-wired outside address (the vendor's logo in the side bar) pointed at the
    local favicon, so the page makes no request outside this server."""
    text = (_docs_assets_dir() / "redoc.standalone.js").read_text(encoding="utf-8")
    return text.replace(REDOC_LOGO, f"{DOCS_ASSETS}/favicon.png").encode("utf-8")


def _offline_docs(app: FastAPI) -> None:
    """Replace FastAPI's CDN-backed ``/docs`` and ``/redoc`` with pages that load their assets from this server."""
    drop = {"/docs", "/redoc", "/docs/oauth2-redirect"}
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", None) not in drop]
    app.docs_url = app.redoc_url = None

    @app.get(f"{DOCS_ASSETS}/redoc.standalone.js", include_in_schema=False)
    def redoc_js() -> Response:
        return Response(_redoc_bundle(), media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "max-age=3600"})

    app.mount(DOCS_ASSETS, StaticFiles(directory=_docs_assets_dir()), name="offline-docs")

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return offline_html(get_swagger_ui_html(openapi_url=app.openapi_url, title=app.title + " — Swagger UI",
                                   oauth2_redirect_url="/docs/oauth2-redirect",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
                                   swagger_ui_parameters={"persistAuthorization": False}))

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return offline_html(get_redoc_html(openapi_url=app.openapi_url, title=app.title + " — ReDoc",
                              redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png", with_google_fonts=False))


def _secured_openapi(app: FastAPI) -> None:
    """OpenAPI with an ``apiKey`` security scheme (header ``X-API-Key``) required on every operation but
    ``/health``; the per-operation ``x-api-key`` header parameter is dropped so Swagger asks for the key once.
    Every JSON request body is documented as accepted in YAML too (``application/yaml``, :mod:`api.guard`)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema.setdefault("components", {}).setdefault("securitySchemes", {})[KEY_SCHEME] = {
            "type": "apiKey", "in": "header", "name": "X-API-Key",
            "description": "API key / ключ API: `planner keys create --role viewer|planner`"}
        for path, ops in schema.get("paths", {}).items():
            if path in PUBLIC_PATHS:
                continue
            for op in ops.values():
                if not isinstance(op, dict):
                    continue
                params = [p for p in op.get("parameters", [])
                          if not (p.get("in") == "header" and p.get("name", "").lower() == "x-api-key")]
                if params:
                    op["parameters"] = params
                else:
                    op.pop("parameters", None)
                op["security"] = [{KEY_SCHEME: []}]
                content = op.get("requestBody", {}).get("content", {})
                if "application/json" in content:  # api.guard reads a YAML body as the same document
                    content["application/yaml"] = dict(content["application/json"])
                _json_errors(op)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _json_errors(op: dict) -> None:
    """Document every error answer of an operation as JSON, which is what the error handlers send: FastAPI gives
    the shared error responses the media type of the operation's own response class (a YAML download's 404 would
    be documented as ``application/yaml``, which clients and schemathesis's ST105 then hold against the JSON)."""
    for status, resp in op.get("responses", {}).items():
        content = resp.get("content")
        if status.startswith("2") or not content or "application/json" in content:
            continue
        resp["content"] = {"application/json": next(iter(content.values()))}


def install(app: FastAPI) -> FastAPI:
    """Add the web workspace, its endpoints, the offline docs and the key scheme to ``app``; returns ``app``."""
    from api.web.routes import router

    if getattr(app.state, "web_installed", False):
        return app
    app.state.web_installed = True
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _offline_docs(app)
    _secured_openapi(app)
    return app
