"""The web app of `inpaintlab serve` (the command: `command.py`): the page and the HTTP API.

Routes (Starlette app, uvicorn server; onnxruntime only, torch is never imported):

- ``GET /``: the page (``static/index.html`` + ``app.js`` + ``style.css``, no build step).
- ``POST /api/inpaint``: multipart ``image`` plus either ``mask`` (same size, white = fill) or
  ``extend=L,T,R,B`` (pixels or N%, as ``predict --extend``); optional ``threshold`` (default
  0.5) and ``job`` (an id for ``/api/progress/<job>``). Answers the PNG (``image/png``), or a
  4xx with a one-line ``text/plain`` message; 500 only when the model itself fails.
- ``GET /api/progress/<job>``: ``{"state": "queued|running|done|failed", "done": k, "total": n}``
  model passes of a running request (the page's progress bar).
- ``GET /api/health``: ``{"status": "ok", "model": ..., "image_size": ..., "limits": ...}``.
- ``GET /api/samples``, ``GET /api/samples/<name>.png``: the bundled sample photos.

Inference runs in a pool of ``--workers`` threads (onnxruntime releases the GIL), so the event
loop keeps answering health checks, progress polls and uploads while the model works; further
requests wait in the pool's queue and are all answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inpaintlab.errors import UserError
from inpaintlab.serve.engine import (
    BadRequest,
    Limits,
    Model,
    ProgressBoard,
    Upload,
    fill,
    http_status,
)
from inpaintlab.serve.samples import SAMPLES, sample_png

STATIC = Path(__file__).parent / "static"
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def one_line(text: str) -> str:
    return " ".join(str(text).split()) or "error"


def error(status: int, message: str) -> PlainTextResponse:
    return PlainTextResponse(f"{one_line(message)}\n", status_code=status)


class UploadTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` is refused with 413, from its
    Content-Length before anything is read, or as soon as a streamed body passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def message(self) -> str:
        return (
            f"the upload is larger than the limit of {self.max_bytes / 1e6:g} MB (--max-upload-mb)"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"").decode("latin-1").strip()
        if length.isdigit() and int(length) > self.max_bytes:
            await error(413, self.message())(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise UploadTooLarge(self.message())
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except UploadTooLarge as err:
            if not started:
                await error(413, str(err))(scope, receive, send)


def create_app(model: Model, limits: Limits = Limits(), workers: int = 1) -> ASGIApp:  # noqa: B008
    """The page and the API for a loaded ONNX model (see the module docstring)."""
    executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="inpaint")
    board = ProgressBoard()

    async def health(request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "model": model.path.name,
                "image_size": model.image_size,
                "limits": {"max_pixels": limits.max_pixels, "max_upload_bytes": limits.max_bytes},
                "workers": workers,
            }
        )

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def samples(request: Request) -> Response:
        return JSONResponse([{"name": name, "url": f"/api/samples/{name}.png"} for name in SAMPLES])

    async def sample(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in SAMPLES:
            return error(404, f"no sample {name!r}; there are {', '.join(SAMPLES)}")
        png = await asyncio.get_running_loop().run_in_executor(None, sample_png, name)
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    async def progress(request: Request) -> Response:
        found = board.get(request.path_params["job"])
        if found is None:
            return error(404, "no such job (it finished long ago, or never started)")
        return JSONResponse(found.as_dict())

    async def field_upload(form, name: str) -> Upload | None:
        value = form.get(name)
        if value is None:
            return None
        if isinstance(value, UploadFile):
            return Upload(await value.read(), value.filename)
        raise BadRequest(f"{name} must be a file upload (curl -F {name}=@file.png)")

    def field_text(form, name: str) -> str | None:
        value = form.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            return value.strip()
        raise BadRequest(f"{name} must be a text field, not a file")

    async def inpaint(request: Request) -> Response:
        try:
            content_type = request.headers.get("content-type", "")
            if not content_type.startswith("multipart/form-data"):
                raise BadRequest(
                    "send multipart/form-data: image=@photo.png and mask=@mask.png or extend=L,T,R,B"
                )
            try:
                form = await request.form(max_files=4, max_fields=16, max_part_size=64 * 1024)
            except UploadTooLarge:
                raise
            except Exception as err:  # MultiPartException and malformed bodies
                raise BadRequest(f"cannot parse the form: {one_line(err)}") from None
            try:
                image = await field_upload(form, "image")
                mask = await field_upload(form, "mask")
                extend = field_text(form, "extend") or None
                threshold_text = field_text(form, "threshold")
                job = field_text(form, "job")
            finally:
                await form.close()
            if image is None:
                raise BadRequest("missing the image field (curl -F image=@photo.png)")
            try:
                threshold = float(threshold_text) if threshold_text else 0.5
            except ValueError:
                raise BadRequest(f"threshold must be a number, got {threshold_text!r}") from None
            if job is not None and not JOB_ID.fullmatch(job):
                raise BadRequest("job must be 1-64 letters, digits, '-' or '_'")
        except UploadTooLarge as err:
            return error(413, str(err))
        except BadRequest as err:
            return error(err.status, str(err))
        tracker = board.start(job) if job else None
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(
                executor, lambda: fill(model, image, mask, extend, limits, threshold, tracker)
            )
        except UserError as err:  # the client's input (4xx), or the model failing (500)
            board.finish(tracker, "failed")
            return error(http_status(err), str(err))
        except MemoryError:
            board.finish(tracker, "failed")
            return error(413, "not enough memory for this image; try a smaller one")
        except BaseException:
            board.finish(tracker, "failed")
            raise
        board.finish(tracker, "done")
        headers = {
            "Content-Disposition": f'inline; filename="{result.filename}"',
            "X-Inpaintlab-Size": f"{result.width}x{result.height}",
            "X-Inpaintlab-Seconds": f"{result.seconds:.3f}",
            "Cache-Control": "no-store",
        }
        if result.notes:
            headers["X-Inpaintlab-Notes"] = "; ".join(result.notes)
        return Response(result.png, media_type="image/png", headers=headers)

    async def unexpected(request: Request, exc: Exception) -> Response:
        return error(500, f"unexpected {type(exc).__name__}: {one_line(exc)}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        executor.shutdown(wait=False, cancel_futures=True)

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/health", health),
            Route("/api/samples", samples),
            Route("/api/samples/{name}.png", sample),
            Route("/api/progress/{job}", progress),
            Route("/api/inpaint", inpaint, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        exception_handlers={500: unexpected},
        lifespan=lifespan,
    )
    return BodyLimit(app, limits.max_bytes)
