"""`inpaintlab serve`: try the exported model in a browser, and an HTTP API behind the page.

    inpaintlab serve --model models/export/model.onnx [--host 127.0.0.1] [--port 8000]

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

import argparse
import asyncio
import contextlib
import ipaddress
import re
import socket
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inpaintlab.serve.engine import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    BadRequest,
    Limits,
    Model,
    ModelError,
    PredictError,
    ProgressBoard,
    Upload,
    fill,
    load_model,
    megapixels,
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
        except (BadRequest, PredictError, ModelError) as err:
            board.finish(tracker, "failed")
            status = err.status if isinstance(err, BadRequest) else 400
            return error(500 if isinstance(err, ModelError) else status, str(err))
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


# --------------------------------------------------------------------------- the command


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_notice(host: str, port: int) -> str | None:
    """What to say when the server is reachable from other machines (None on loopback)."""
    if is_loopback(host):
        return None
    where = "every network interface" if host in ("0.0.0.0", "::", "") else host
    return (
        f"note: listening on {where} (--host {host}), port {port}: other machines can reach "
        "this server, and it has no authentication"
    )


def listen(host: str, port: int) -> socket.socket:
    """A listening socket (so a busy port is our one-line error, not a uvicorn traceback)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as err:
        raise PredictError(f"cannot listen on {host}:{port}: {err.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise PredictError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    sock.set_inheritable(True)
    return sock


def _positive(kind: type) -> Callable[[str], float]:
    def parse(text: str):
        try:
            value = kind(float(text)) if kind is int else kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inpaintlab serve",
        description="A web page to try the model (upload, paint, fill, download) and the HTTP API "
        "behind it (POST /api/inpaint). Binds 127.0.0.1 unless --host says otherwise.",
    )
    parser.add_argument("--model", required=True, type=Path, help="the exported model.onnx")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every interface)",
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free)")
    parser.add_argument(
        "--max-pixels",
        type=_positive(int),
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help=f"largest image, mask or result in pixels (default {DEFAULT_MAX_PIXELS:.0e}, i.e. "
        f"{megapixels(DEFAULT_MAX_PIXELS)})",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=_positive(float),
        default=DEFAULT_MAX_BYTES / 1e6,
        metavar="MB",
        help=f"largest request body in MB (default {DEFAULT_MAX_BYTES / 1e6:g})",
    )
    parser.add_argument(
        "--workers",
        type=_positive(int),
        default=1,
        help="requests run by the model at once (default 1; others queue)",
    )
    parser.add_argument(
        "--threads",
        type=_positive(int),
        default=None,
        help="onnxruntime threads per request (default: the CPUs this process may use)",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-request access log")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.model.suffix.lower() != ".onnx":
            raise PredictError(
                f"unsupported model {args.model}: serve runs the exported .onnx model "
                "(onnxruntime; no torch)"
            )
        if not 0 <= args.port <= 65535:
            raise PredictError(f"--port must be in 0..65535, got {args.port}")
        model = load_model(args.model, threads=args.threads)
        sock = listen(args.host, args.port)
    except PredictError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ModelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

    import uvicorn

    limits = Limits(max_pixels=args.max_pixels, max_bytes=int(args.max_upload_mb * 1e6))
    app = create_app(model, limits, workers=args.workers)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(
        f"serving {args.model} (trained at {model.image_size}px) on http://{shown}:{port}/ "
        f"(limits: {megapixels(limits.max_pixels)}, {limits.max_bytes / 1e6:g} MB; "
        f"{args.workers} worker{'s' * (args.workers > 1)}); Ctrl+C stops",
        flush=True,
    )
    if notice := bind_notice(args.host, port):
        print(notice, file=sys.stderr, flush=True)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=not args.quiet,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    if not args.quiet:
        # uvicorn's access lines at INFO; everything else from it only when it goes wrong
        import logging

        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
