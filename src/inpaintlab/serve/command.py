"""`inpaintlab serve`: try the exported model in a browser, and an HTTP API behind the page.

    inpaintlab serve --model models/export/model.onnx [--host 127.0.0.1] [--port 8000]

The command: arguments, the listening socket, uvicorn. The page and the API are `app.py`.
Errors before the server starts are one line with the exit codes of every command (errors.py).
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from inpaintlab.errors import UserError, command
from inpaintlab.serve.app import create_app
from inpaintlab.serve.engine import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    Limits,
    load_model,
    megapixels,
)


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
        raise UserError(f"cannot listen on {host}:{port}: {err.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
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


@command
def main(argv: list[str] | None = None) -> int:
    """`inpaintlab serve`; returns the exit code once the server stops (Ctrl+C: 0)."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.model.suffix.lower() != ".onnx":
        raise UserError(
            f"unsupported model {args.model}: serve runs the exported .onnx model "
            "(onnxruntime; no torch)"
        )
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be in 0..65535, got {args.port}")
    model = load_model(args.model, threads=args.threads)
    sock = listen(args.host, args.port)

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
