"""The dev server over a real socket, and the CGI handler, on the bundled world style."""
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, process, deadline=30.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}: {process.stderr.read().decode()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)  # polling a port: there is no event to await
    raise AssertionError("server did not start listening")


@pytest.fixture(scope="module")
def world_config(tmp_path_factory):
    folder = tmp_path_factory.mktemp("site")
    config = {
        "cache": {"name": "Disk", "path": str(folder / "cache"), "dirs": "portable"},
        "layers": {"world": {"provider": {"name": "mapnik", "mapfile": str(REPO / "examples/world.xml")},
                             "metatile": {"rows": 2, "columns": 2, "buffer": 64}}},
    }
    path = folder / "tilestache.cfg"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def dev_server(world_config):
    port = free_port()
    process = subprocess.Popen([str(BIN / "tilestache-server"), "-c", str(world_config), "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def fetch(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_dev_server_serves_a_mapnik_tile(dev_server, world_config):
    status, headers, body = fetch(dev_server + "/world/2/2/1.png")
    assert status == 200 and headers["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(body))
    assert image.size == (256, 256)
    assert len(image.convert("RGB").getcolors(10000) or []) > 10  # a real map, not a blank tile
    assert (world_config.parent / "cache/world/2/3/0.png").exists()  # the metatile neighbour


def test_dev_server_conditional_get_and_errors(dev_server):
    status, headers, body = fetch(dev_server + "/world/1/0/0.png")
    status, _, body = fetch(dev_server + "/world/1/0/0.png", {"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""
    status, headers, body = fetch(dev_server + "/world/1/x/0.png")
    assert status == 400 and headers["Content-Type"].startswith("text/plain")
    assert fetch(dev_server + "/nowhere/1/0/0.png")[0] == 404
    status, headers, body = fetch(dev_server + "/world/preview.html")
    assert status == 200 and b"leaflet" in body.lower()


def test_dev_server_options():
    result = subprocess.run([str(BIN / "tilestache-server"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for option in ("--config", "--ip", "--port"):
        assert option in result.stdout


def test_dev_server_bad_config_exits_with_message(tmp_path):
    (tmp_path / "bad.cfg").write_text('{"layers": {"x": {"provider": {"name": "mapnik"}}}}')
    result = subprocess.run([str(BIN / "tilestache-server"), "-c", str(tmp_path / "bad.cfg"), "-p", str(free_port())],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "layer 'x'" in result.stderr and "Traceback" not in result.stderr


def test_script_wrapper_runs(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "scripts/tilestache-server.py"), "--help"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "--port" in result.stdout


def test_cgi_handler(world_config):
    code = "import os, TileStache; TileStache.cgiHandler(os.environ, os.environ['TS_CONFIG'])"
    env = dict(os.environ, TS_CONFIG=str(world_config), REQUEST_METHOD="GET", PATH_INFO="/world/0/0/0.png",
               QUERY_STRING="", SCRIPT_NAME="/tiles.cgi", SERVER_NAME="localhost", SERVER_PORT="80",
               SERVER_PROTOCOL="HTTP/1.1")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60)
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"Status: 200")
    assert b"Content-Type: image/png" in head
    assert Image.open(io.BytesIO(body)).size == (256, 256)
    env["PATH_INFO"] = "/world/0/0/zero.png"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60)
    assert result.stdout.startswith(b"Status: 400")
