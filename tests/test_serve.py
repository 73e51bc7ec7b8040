"""`inpaintlab serve`'s HTTP API on a real uvicorn server (127.0.0.1, free port) with a tiny ONNX
model: health and page, results equal to `inpaintlab predict`'s, outpainting, one-line 4xx for bad
input while the server stays up, 8 concurrent requests, progress, loopback by default, no torch.

Slow (`-m slow`, run by .ci/run): the registered MLflow model answering `mlflow models serve`
requests with a filled image, and the wheel shipping the page's files.
"""

from __future__ import annotations

import io
import re
import signal
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import requests
from conftest import BIN, clean_env, copy_project
from helpers.mlflow_server import free_port, stop
from helpers.serve import photo, running_server, tiny_onnx
from PIL import Image

from inpaintlab.data.io import save_image
from inpaintlab.inference import inpaint, load_model, outpaint
from inpaintlab.inference.regions import parse_extend, resolve_extend
from inpaintlab.serve.app import create_app
from inpaintlab.serve.command import bind_notice, main
from inpaintlab.serve.engine import Limits

MAX_PIXELS = 120_000
MAX_BYTES = 1_000_000


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return tiny_onnx(tmp_path_factory.mktemp("serve-model") / "model.onnx")


@pytest.fixture(scope="module")
def model(model_path):
    return load_model(model_path)


@pytest.fixture(scope="module")
def server(model) -> str:
    app = create_app(model, Limits(max_pixels=MAX_PIXELS, max_bytes=MAX_BYTES), workers=2)
    with running_server(app) as url:
        yield url


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def stroke_mask(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A box and a thick diagonal stroke, like a user's brush work."""
    import cv2

    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    x, y = int(rng.integers(5, width // 2)), int(rng.integers(5, height // 2))
    mask[y : y + height // 4, x : x + width // 5] = 255
    cv2.line(mask, (width // 6, height - 10), (width - 12, height // 5), 255, 9)
    return mask


def post(url: str, files: dict, data: dict | None = None, **kwargs) -> requests.Response:
    return requests.post(f"{url}/api/inpaint", files=files, data=data or {}, timeout=60, **kwargs)


def assert_one_line_error(response: requests.Response, status: int, needle: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert text.endswith("\n") and text.count("\n") == 1, repr(text)
    assert needle in text, text


def assert_alive(url: str) -> None:
    assert requests.get(f"{url}/api/health", timeout=10).json()["status"] == "ok"


# --------------------------------------------------------------------------- the page and health


def test_health_page_static_files_and_samples(server):
    health = requests.get(f"{server}/api/health", timeout=10).json()
    assert health["status"] == "ok" and health["model"] == "model.onnx"
    assert health["image_size"] == 32
    assert health["limits"] == {"max_pixels": MAX_PIXELS, "max_upload_bytes": MAX_BYTES}
    page = requests.get(server, timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for needle in ('id="paint"', 'id="fill"', 'id="brush"', 'id="undo"', 'id="ext-right"'):
        assert needle in page.text
    for name in ("app.js", "style.css"):
        assert requests.get(f"{server}/static/{name}", timeout=10).status_code == 200
    samples = requests.get(f"{server}/api/samples", timeout=10).json()
    assert len(samples) >= 2
    for sample in samples:
        answer = requests.get(f"{server}{sample['url']}", timeout=30)
        assert answer.headers["content-type"] == "image/png"
        assert decode(answer.content).shape == (384, 512, 3)
        assert len(answer.content) < 600_000
    assert requests.get(f"{server}/api/samples/nope.png", timeout=10).status_code == 404


# --------------------------------------------------------------------------- same as predict


def test_inpaint_equals_predict_for_the_same_input(server, model, model_path, tmp_path):
    image, mask = photo(150, 230), stroke_mask(150, 230)
    response = post(
        server,
        {"image": ("holiday.png", png(image), "image/png"), "mask": ("m.png", png(mask))},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert 'filename="holiday_filled.png"' in response.headers["content-disposition"]
    assert response.headers["x-inpaintlab-size"] == "230x150"
    result = decode(response.content)
    expected = inpaint(image, mask > 0, model.run, model.image_size)
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(result[mask == 0], image[mask == 0])
    assert (result[mask > 0] != image[mask > 0]).any()
    # and the CLI itself, on the same files
    save_image(tmp_path / "in.png", image)
    save_image(tmp_path / "mask.png", mask)
    cli = [BIN / "inpaintlab", "predict", "--model", model_path, "--image", tmp_path / "in.png"]
    cli += ["--mask", tmp_path / "mask.png", "--out", tmp_path / "out.png", "--quiet"]
    subprocess.run([str(a) for a in cli], check=True, env=clean_env())
    np.testing.assert_array_equal(result, decode((tmp_path / "out.png").read_bytes()))


def test_extend_by_20_percent_on_one_side_gives_the_larger_image(server, model):
    image = photo(120, 160, seed=11)
    response = post(server, {"image": ("p.png", png(image))}, {"extend": "0,0,20%,0"})
    assert response.status_code == 200, response.text
    assert 'filename="p_extended.png"' in response.headers["content-disposition"]
    result = decode(response.content)
    assert result.shape == (120, 192, 3)
    np.testing.assert_array_equal(result[:, :160], image)
    amounts = resolve_extend(parse_extend("0,0,20%,0"), 120, 160)
    np.testing.assert_array_equal(result, outpaint(image, amounts, model.run, model.image_size))
    pixels = post(server, {"image": ("p.png", png(image))}, {"extend": "8,0,0,16"})
    assert decode(pixels.content).shape == (136, 168, 3)


def test_a_jpeg_with_a_grey_mask_is_thresholded_like_predict(server, model):
    image = photo(96, 128, seed=16)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=90)
    mask = (stroke_mask(96, 128) * 0.8).astype(np.uint8)  # 204: above predict's 0.5 threshold
    response = post(server, {"image": ("a.jpg", buffer.getvalue()), "mask": ("m.png", png(mask))})
    assert response.status_code == 200, response.text
    assert "thresholded at 0.5" in response.headers["x-inpaintlab-notes"]
    decoded = decode(buffer.getvalue())
    expected = inpaint(decoded, mask >= 128, model.run, model.image_size)
    np.testing.assert_array_equal(decode(response.content), expected)
    empty = post(
        server,
        {"image": ("a.png", png(image)), "mask": ("m.png", png(np.zeros((96, 128), np.uint8)))},
    )
    assert "the mask is empty" in empty.headers["x-inpaintlab-notes"]
    np.testing.assert_array_equal(decode(empty.content), image)


# --------------------------------------------------------------------------- bad input


def bad_requests(image: bytes, mask: bytes) -> list[tuple[str, dict, int, str]]:
    big = png(photo(400, 400))  # 160 000 px > MAX_PIXELS
    other = png(np.zeros((30, 40), np.uint8))
    return [
        ("non-image", {"files": {"image": ("notes.txt", b"hello\n"), "mask": ("m.png", mask)}}, 400, "cannot read image 'notes.txt': not an image"),
        ("non-image mask", {"files": {"image": ("a.png", image), "mask": ("m.png", b"\x00" * 50)}}, 400, "cannot read mask 'm.png'"),
        ("truncated", {"files": {"image": ("a.png", image[: len(image) // 2]), "mask": ("m.png", mask)}}, 400, "truncated or corrupt"),
        ("empty", {"files": {"image": ("a.png", b""), "mask": ("m.png", mask)}}, 400, "image 'a.png' is empty"),
        ("mask of another size", {"files": {"image": ("a.png", image), "mask": ("m.png", other)}}, 400, "mask 'm.png' is 40x30 but image 'a.png' is 64x48"),
        ("no mask nor extend", {"files": {"image": ("a.png", image)}}, 400, "send a mask"),
        ("both", {"files": {"image": ("a.png", image), "mask": ("m.png", mask)}, "data": {"extend": "1,1,1,1"}}, 400, "not both"),
        ("bad extend", {"files": {"image": ("a.png", image)}, "data": {"extend": "1,2"}}, 400, "extend: expected L,T,R,B"),
        ("negative extend", {"files": {"image": ("a.png", image)}, "data": {"extend": "0,-1,0,0"}}, 400, "must be >= 0"),
        ("no image", {"files": {"mask": ("m.png", mask)}}, 400, "missing the image field"),
        ("mask as text", {"files": {"image": ("a.png", image)}, "data": {"mask": "x"}}, 400, "mask must be a file upload"),
        ("bad threshold", {"files": {"image": ("a.png", image), "mask": ("m.png", mask)}, "data": {"threshold": "2"}}, 400, "threshold must be in (0, 1]"),
        ("too many pixels", {"files": {"image": ("big.png", big), "mask": ("m.png", mask)}}, 413, "image 'big.png' is 400x400 = 0.16 MP; the limit is 0.12 MP (--max-pixels)"),
        ("result too large", {"files": {"image": ("a.png", image)}, "data": {"extend": "0,0,5000%,0"}}, 413, "gives 3264x48"),
        ("too many bytes", {"files": {"image": ("a.png", image + b"\x00" * (MAX_BYTES + 10))}}, 413, "larger than the limit of 1 MB (--max-upload-mb)"),
    ]  # fmt: skip


def test_bad_input_gets_a_one_line_4xx_and_the_server_stays_up(server):
    image, mask = png(photo(48, 64)), png(stroke_mask(48, 64))
    for name, kwargs, status, needle in bad_requests(image, mask):
        response = requests.post(f"{server}/api/inpaint", timeout=60, **kwargs)
        assert response.status_code == status, (name, response.status_code, response.text)
        assert_one_line_error(response, status, needle)
    not_multipart = requests.post(f"{server}/api/inpaint", data=b"{}", timeout=10)
    assert_one_line_error(not_multipart, 400, "send multipart/form-data")
    assert_alive(server)
    ok = post(server, {"image": ("a.png", image), "mask": ("m.png", mask)})
    assert ok.status_code == 200


def test_a_streamed_upload_over_the_limit_is_refused_without_reading_it_all(server):
    """No Content-Length (chunked): the limit applies as the body arrives."""
    boundary = "x" * 20
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()

    def chunks():
        yield head
        for _ in range(2 * MAX_BYTES // 65536 + 2):
            yield b"\x00" * 65536

    try:
        response = requests.post(
            f"{server}/api/inpaint",
            data=chunks(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            timeout=60,
        )
    except requests.ConnectionError:  # the server may close before the client finished sending
        pass
    else:
        assert_one_line_error(response, 413, "larger than the limit")
    assert_alive(server)


# --------------------------------------------------------------------------- concurrency, progress


def test_eight_concurrent_requests_are_all_answered(server, model):
    image = photo(160, 240, seed=20)
    masks = [stroke_mask(160, 240, seed=i) for i in range(8)]

    def call(mask: np.ndarray) -> np.ndarray:
        response = post(server, {"image": ("a.png", png(image)), "mask": ("m.png", png(mask))})
        assert response.status_code == 200, response.text
        return decode(response.content)

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(call, mask) for mask in masks]
        start = time.monotonic()
        assert_alive(server)  # the event loop answers while the workers are busy
        health_s = time.monotonic() - start
        results = [f.result(timeout=120) for f in futures]
    for mask, result in zip(masks, results, strict=True):
        np.testing.assert_array_equal(result, inpaint(image, mask > 0, model.run, model.image_size))
    assert health_s < 5


def test_progress_counts_the_model_passes(server):
    image, mask = photo(150, 230), stroke_mask(150, 230)
    response = post(
        server, {"image": ("a.png", png(image)), "mask": ("m.png", png(mask))}, {"job": "job-1"}
    )
    assert response.status_code == 200
    progress = requests.get(f"{server}/api/progress/job-1", timeout=10).json()
    assert progress["state"] == "done" and progress["total"] >= 1
    assert progress["done"] == progress["total"]
    failed = post(server, {"image": ("a.txt", b"no")}, {"job": "job-2", "extend": "1,1,1,1"})
    assert failed.status_code == 400
    assert requests.get(f"{server}/api/progress/job-2", timeout=10).json()["state"] == "failed"
    assert requests.get(f"{server}/api/progress/nope", timeout=10).status_code == 404


# --------------------------------------------------------------------------- the command


@contextmanager
def serve_process(*args: str):
    """`inpaintlab serve ... --port 0`; yields (process, base URL from its first line)."""
    cmd = [str(BIN / "inpaintlab"), "serve", *args, "--port", "0", "--quiet"]
    process = subprocess.Popen(
        cmd, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline()
        found = re.search(r"on (http://\S+?)/ ", line)
        assert found, (
            f"no URL in {line!r}; stderr: {process.stderr.read() if process.poll() is not None else ''}"
        )
        yield process, found.group(1)
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl+C
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                found.add(address)
    return found


def test_serve_binds_127_0_0_1_by_default_and_answers(model_path):
    with serve_process("--model", str(model_path)) as (process, url):
        assert url.startswith("http://127.0.0.1:")
        port = int(url.rsplit(":", 1)[1])
        assert_alive(url)
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1 only
        image, mask = png(photo(48, 64)), png(stroke_mask(48, 64))
        assert post(url, {"image": ("a.png", image), "mask": ("m.png", mask)}).status_code == 200
    assert process.returncode == 0, process.stderr.read()


def test_another_host_is_announced(model_path, monkeypatch, capsys):
    assert bind_notice("127.0.0.1", 8000) is None
    assert bind_notice("localhost", 8000) is None and bind_notice("::1", 8000) is None
    assert "every network interface" in bind_notice("0.0.0.0", 8000)
    assert "other machines can reach" in bind_notice("192.168.1.5", 8000)
    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    assert main(["--model", str(model_path), "--host", "0.0.0.0", "--port", "0"]) == 0
    out, err = capsys.readouterr()
    assert "serving" in out and "http://0.0.0.0:" in out
    assert err.startswith("note: listening on every network interface (--host 0.0.0.0)")
    assert main(["--model", str(model_path), "--port", "0"]) == 0
    out, err = capsys.readouterr()
    assert "http://127.0.0.1:" in out and err == ""


def test_command_errors_are_one_line(model_path, tmp_path, capsys):
    assert main(["--model", str(tmp_path / "model.pt")]) == 2
    assert "serve runs the exported .onnx model" in capsys.readouterr().err
    assert main(["--model", str(tmp_path / "missing.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model") and err.count("\n") == 1
    (tmp_path / "broken.onnx").write_bytes(b"not onnx")
    assert main(["--model", str(tmp_path / "broken.onnx")]) == 1
    assert capsys.readouterr().err.startswith("error: cannot load model")
    port = free_port()
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen(1)
        assert main(["--model", str(model_path), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{port}") and err.count("\n") == 1


def test_serve_does_not_import_torch(model_path):
    code = (
        "import sys\n"
        "from inpaintlab.serve.app import create_app\n"
        "from inpaintlab.serve.command import main\n"
        "from inpaintlab.serve.engine import Upload, fill, load_model\n"
        "from inpaintlab.serve.samples import sample_png\n"
        f"model = load_model({str(model_path)!r})\n"
        "create_app(model)\n"
        "sample = sample_png('meadow')\n"
        "result = fill(model, Upload(sample, 's.png'), extend='0,0,10%,0')\n"
        "assert result.width == 563, result.width\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_lists_and_delegates_serve():
    from inpaintlab import cli

    assert cli.DELEGATES["serve"] == "inpaintlab.serve.command"
    done = subprocess.run(
        [str(BIN / "inpaintlab"), "serve", "--help"], capture_output=True, text=True, check=True
    )
    assert "--host" in done.stdout and "127.0.0.1" in done.stdout
    usage = subprocess.run([str(BIN / "inpaintlab")], capture_output=True, text=True)
    assert "serve" in usage.stdout


# --------------------------------------------------------------------------- slow: MLflow, wheel


@pytest.mark.slow
def test_registered_model_answers_mlflow_models_serve_with_a_filled_image(model_path, tmp_path):
    """The version `export` registers, served the MLflow way against a real SQLite store."""
    import urllib.request

    from mlflow.tracking import MlflowClient

    from inpaintlab import tracking
    from inpaintlab.export import register_onnx

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = tracking.ensure_experiment("inpaintlab", uri, root=tmp_path)
    client = MlflowClient(tracking_uri=uri)
    run = client.create_run(experiment_id, run_name="train")
    client.set_terminated(run.info.run_id)
    image, hole = photo(48, 64).astype(np.float32) / 255.0, stroke_mask(48, 64) > 0
    example = {
        "image": np.ascontiguousarray(image.transpose(2, 0, 1)[None]),
        "mask": hole.astype(np.float32)[None, None],
    }
    version = register_onnx(model_path, run.info.run_id, uri, example)
    assert version == "1"

    port = free_port()
    log = tmp_path / "models-serve.log"
    cmd = [str(BIN / "mlflow"), "models", "serve", "-m", "models:/inpaintlab/1"]
    cmd += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "w") as handle:
        process = subprocess.Popen(
            cmd,
            cwd=tmp_path,
            env=clean_env(MLFLOW_TRACKING_URI=uri),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
        body = {"inputs": {name: value.tolist() for name, value in example.items()}}
        response = requests.post(f"{url}/invocations", json=body, timeout=120)
        assert response.status_code == 200, response.text[:2000]
        output = np.asarray(response.json()["predictions"]["output"], np.float32)
    finally:
        stop(process)
    assert output.shape == (1, 3, 48, 64)
    filled = np.clip(np.rint(output[0].transpose(1, 2, 0) * 255), 0, 255).astype(np.uint8)
    original = photo(48, 64)
    np.testing.assert_array_equal(filled[~hole], original[~hole])  # known pixels pass through
    assert (filled[hole] > 0).any(axis=-1).all()  # the hole is filled, not left blank
    expected = load_model(model_path).run(example["image"], example["mask"])
    np.testing.assert_allclose(output, expected, atol=1e-6)  # what the ONNX file computes
    save_image(tmp_path / "filled.png", filled)  # a real image, as the README's client writes


@pytest.mark.slow
def test_the_wheel_ships_the_page(tmp_path):
    project = copy_project(tmp_path / "project")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w"]
        + [str(tmp_path / "dist"), str(project)],
        check=True,
        env=clean_env(),
    )
    [wheel] = (tmp_path / "dist").glob("inpaintlab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("index.html", "app.js", "style.css"):
        assert f"inpaintlab/serve/static/{name}" in names, sorted(names)
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))
    )
    assert b"inpaintlab = inpaintlab.cli:main" in entry_points
