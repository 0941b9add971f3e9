"""The labeling web app: a FastAPI app with the display-copy route, and Gradio mounted at `/` serving one page
whose single `gr.HTML` component is the whole client (`static/labeler.js`, `static/labeler.css`). Imported only when the app is
built (it imports FastAPI; Gradio is imported inside `build_app`).

One component rather than Gradio tabs: its own tab bar keeps live counts in every tab label, one key handler
owns the keyboard, and `?tab=<workflow>/<stage>` selects a tab without a server round trip. The browser talks
to `LabelingService` through the component's server functions, which Gradio routes past its event queue and
behind its login check; `/display/<objectid>` performs the same check itself.
"""

# No `from __future__ import annotations` here: Gradio injects the request into a server function by its
# annotation, which must be the real `gr.Request` class, not a string.
import logging
import os
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.datastructures import Headers

from beprepared_dagster.errors import BadImage
from beprepared_dagster.labeling.config import LabelingSettings
from beprepared_dagster.labeling.service import LabelingService
from beprepared_dagster.store.objects import ObjectChanged

log = logging.getLogger(__name__)

APP_ID = "beprepared-labeling"
ELEM_ID = "bp-labeler"
TITLE = "beprepared · labeling"
_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]


def static_text(name: str) -> str:
    """A file of `labeling/static/` (shipped in the package: no CDN)."""
    return resources.files("beprepared_dagster.labeling").joinpath("static", name).read_text(encoding="utf-8")


def build_app(service: LabelingService, settings: LabelingSettings) -> Any:
    """The ASGI app (FastAPI) serving `service` with `settings.auth` as login (None: no login)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr
    from fastapi import FastAPI

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SameOriginWrites, public_url=settings.public_url)
    holder: dict[str, Any] = {}
    _add_routes(app, service, holder)
    blocks = _blocks(service, holder)
    app = gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        auth=settings.auth,
        auth_message="beprepared labeling: sign in",
        ssr_mode=False,
        footer_links=[],
        run_history=False,
        theme=gr.themes.Base(font=_FONTS, font_mono=["ui-monospace", "monospace"]),
        css=static_text("labeler.css"),
        server_name=settings.host,
        server_port=settings.port,
    )
    holder["gradio"] = _mounted_gradio_app(app)
    return app


def _blocks(service: LabelingService, holder: dict[str, Any]) -> Any:
    import gradio as gr

    # Gradio sets each server function as an attribute of the component: names must not shadow its own
    # (a function named `page` broke Blocks.get_config), hence the prefix.
    def lab_start(payload: dict) -> dict:
        return _safe(service.start, payload)

    def lab_page(payload: dict) -> dict:
        return _safe(service.page, payload)

    def lab_poll(payload: dict) -> dict:
        return _safe(service.poll, payload)

    def lab_pairs(payload: dict) -> dict:
        return _safe(service.pairs, payload)

    def lab_record(payload: dict, request: gr.Request) -> dict:
        return _safe(service.record, payload, current_user(holder.get("gradio"), request))

    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_height=True, fill_width=True) as blocks:
        gr.HTML(
            value="",
            html_template='<div class="bp-app" data-state="loading">Loading the labeling app…</div>',
            js_on_load=static_text("labeler.js"),
            server_functions=[lab_start, lab_page, lab_poll, lab_pairs, lab_record],
            apply_default_css=False,
            elem_id=ELEM_ID,
            cfg={"tabs": service.tabs(), "app": APP_ID},
        )
    return blocks


def _safe(handler: Any, *args: Any) -> dict:
    """Gradio answers `null` for a function that raised; answer with the reason instead, and log it."""
    try:
        return handler(*args)
    except Exception as exc:  # a handler bug must reach the screen, not vanish
        log.exception("labeling handler %s failed", getattr(handler, "__name__", handler))
        return {"ok": False, "error": f"server error: {type(exc).__name__}: {exc}"}


def current_user(gradio_app: Any, request: Any) -> str | None:
    """The signed-in user of a request (Gradio's login cookie), None without login or without a session."""
    if gradio_app is None or request is None:
        return None
    cookies = getattr(request, "cookies", None) or {}
    token = cookies.get(f"access-token-{gradio_app.cookie_id}") or cookies.get(
        f"access-token-unsecure-{gradio_app.cookie_id}"
    )
    return gradio_app.tokens.get(token) if token else None


class SameOriginWrites:
    """Refuse a POST (or any unsafe method) that a browser sent from another site. Gradio parses a `text/plain`
    body as JSON and answers cross-site requests that need no preflight, so without this any page the labeler
    visits could write labels through `lab_record`: with login off (the default), and with login on too (Gradio's
    cookies are `SameSite=None` over HTTPS; Firefox sends cookies without the attribute cross-site)."""

    SAFE = ("GET", "HEAD", "OPTIONS")

    def __init__(self, app: Any, public_url: str | None = None) -> None:
        self.app = app
        self.public = urlsplit(public_url).netloc.lower() if public_url else None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] not in self.SAFE and self._cross_site(scope):
            response = JSONResponse({"error": "cross-site request refused"}, status_code=403)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _cross_site(self, scope: Any) -> bool:
        headers = Headers(scope=scope)
        fetch_site = headers.get("sec-fetch-site")
        if fetch_site is not None:  # sent by current browsers (to https and loopback origins)
            return fetch_site not in ("same-origin", "none")  # "same-site": another port of 127.0.0.1 too
        origin = headers.get("origin")
        if origin is None:  # not a browser (curl, scripts, tests): nothing to forge
            return False
        netloc = urlsplit(origin).netloc.lower()  # "null" (sandboxed frame, file://) has none
        hosts = {headers.get("host", "").lower(), headers.get("x-forwarded-host", "").lower(), self.public}
        return not netloc or netloc not in hosts


def _mounted_gradio_app(app: Any) -> Any:
    from starlette.routing import Mount

    for route in app.routes:
        if isinstance(route, Mount) and hasattr(route.app, "tokens"):
            return route.app
    raise RuntimeError("the Gradio app was not mounted")


def _add_routes(app: Any, service: LabelingService, holder: dict[str, Any]) -> None:
    import anyio

    # Image requests get their own few threads: a flood of them (a person pressing keys faster than copies
    # are made) must not take the shared thread pool that saving a label runs in.
    display_threads = anyio.CapacityLimiter(4)

    def refused(request: Request) -> bool:
        gradio_app = holder.get("gradio")
        login_on = gradio_app is None or gradio_app.auth is not None
        return login_on and current_user(gradio_app, request) is None

    @app.get("/display/{object_id}")
    async def display(object_id: str, request: Request, size: str | None = None) -> Response:
        """A display-size copy, by validated object id only; nothing without login when login is on."""
        if refused(request):
            return JSONResponse({"error": "Not authenticated"}, status_code=401)
        try:
            pair = "pair" if size == "pair" else None
            found = await anyio.to_thread.run_sync(service.display, object_id, pair, limiter=display_threads)
        except ValueError:
            return JSONResponse({"error": "not an object id"}, status_code=400)
        except BadImage as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        except ObjectChanged as exc:  # its source file changed since it was loaded: never shown as this image
            return JSONResponse({"error": str(exc)}, status_code=410)
        if found is None:
            return JSONResponse({"error": "no such object"}, status_code=404)
        headers = {"Cache-Control": "private, max-age=31536000, immutable"}
        return FileResponse(found.path, media_type=found.media_type, headers=headers)

    @app.get("/beprepared/health")
    def health(request: Request) -> dict:
        """Tells a second launcher that this port already serves the labeling app (details only to a user)."""
        if refused(request):
            return {"app": APP_ID}
        return {"app": APP_ID, "pid": os.getpid(), "tabs": sorted(service.queues)}

    @app.get("/openapi.json")
    def no_schema() -> Response:
        """Gradio's sub-app would publish its route schema here, login or not."""
        return JSONResponse({"error": "not found"}, status_code=404)
