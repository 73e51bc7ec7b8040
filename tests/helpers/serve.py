"""Shared by test_serve.py and test_serve_ui.py: a tiny contract-conforming ONNX inpainter built
with onnx.helper (no torch, no training), and `inpaintlab serve`'s app on a real uvicorn server in
a background thread on a free 127.0.0.1 port."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from helpers.mlflow_server import free_port

TRAIN_SIZE = (
    32  # the model's "training size": windows and tiles of predict's strategy scale with it
)


def tiny_onnx(path: Path, image_size: int = TRAIN_SIZE, reach: int = 16) -> Path:
    """A normalised box filter: each hole pixel gets the mean of the known pixels within `reach`
    (black where there are none), composited, so known pixels pass through exactly. Inputs `image`
    [N,3,H,W] and `mask` [N,1,H,W], output `output`, N/H/W dynamic, `image_size` metadata."""
    import onnx
    from onnx import TensorProto, helper

    side = 2 * reach + 1
    pool = {
        "kernel_shape": [side, side],
        "pads": [reach] * 4,
        "strides": [1, 1],
        "count_include_pad": 1,
    }
    nodes = [
        helper.make_node("Sub", ["one", "mask"], ["keep"]),
        helper.make_node("Mul", ["image", "keep"], ["known"]),
        helper.make_node("AveragePool", ["known"], ["num"], **pool),
        helper.make_node("AveragePool", ["keep"], ["den"], **pool),
        helper.make_node("Add", ["den", "eps"], ["den_eps"]),
        helper.make_node("Div", ["num", "den_eps"], ["fill"]),
        helper.make_node("Clip", ["fill", "zero", "one"], ["fill_clipped"]),
        helper.make_node("Mul", ["fill_clipped", "mask"], ["generated"]),
        helper.make_node("Add", ["known", "generated"], ["output"]),
    ]
    scalars = [
        helper.make_tensor(name, TensorProto.FLOAT, [], [value])
        for name, value in (("one", 1.0), ("zero", 0.0), ("eps", 1e-6))
    ]

    def spec(name: str, channels: int):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", channels, "H", "W"])

    graph = helper.make_graph(
        nodes,
        "tiny_box_fill",
        [spec("image", 3), spec("mask", 1)],
        [spec("output", 3)],
        initializer=scalars,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    entry = model.metadata_props.add()
    entry.key, entry.value = "image_size", str(image_size)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def photo(height: int, width: int, seed: int = 2) -> np.ndarray:
    """A synthetic landscape, cropped to height x width (uint8 RGB)."""
    from inpaintlab.data.synthetic import render_landscape

    full = render_landscape(seed, max(height, width, 32))
    return np.ascontiguousarray(full[:height, :width])


@contextmanager
def running_server(app) -> Iterator[str]:
    """uvicorn serving `app` on 127.0.0.1:<free port> in a thread; yields the base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start") from None
            time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
