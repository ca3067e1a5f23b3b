"""TileJSON 3.0.0 documents and the default index page, over WSGI."""
import json
import os
import re

import pytest
from werkzeug.test import Client

import TileStache

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORLD = os.path.join(ROOT, "examples", "world.xml")

# Field -> allowed JSON types, from the TileJSON 3.0.0 spec.
FIELD_TYPES = {
    "tilejson": str, "tiles": list, "name": str, "description": str, "version": str,
    "attribution": str, "template": str, "legend": str, "scheme": str, "grids": list, "data": list,
    "minzoom": int, "maxzoom": int, "bounds": list, "center": list, "fillzoom": int, "vector_layers": list,
}


def site(index=None):
    spec = {"cache": {"name": "Test"}, "layers": {
        "world": {"provider": {"name": "mapnik", "mapfile": WORLD}, "attribution": "Natural Earth",
                  "preview": {"lat": 60, "lon": 20, "zoom": 4},
                  "bounds": [{"north": 70, "west": 0, "south": 50, "east": 30, "low": 2, "high": 12},
                             {"north": 40, "west": -10, "south": 35, "east": 5, "low": 3, "high": 14}]},
        "plain": {"provider": {"name": "mapnik", "mapfile": WORLD}, "preview": {"ext": "jpg"}},
        "grid": {"provider": {"name": "mapnik grid", "mapfile": WORLD}, "preview": {"ext": "json"}},
    }}
    if index:
        spec["index"] = index
    return Client(TileStache.WSGITileServer(TileStache.parseConfig(spec)))


def check_spec(document):
    """The 3.0.0 required fields and the types and ranges of the optional ones present."""
    assert document["tilejson"] == "3.0.0"
    assert re.match(r"^\d+\.\d+\.\d+$", document["tilejson"])
    assert document["tiles"] and all(isinstance(url, str) for url in document["tiles"])
    for key, value in document.items():
        if key in FIELD_TYPES:
            assert isinstance(value, FIELD_TYPES[key]) and not isinstance(value, bool), key
    assert 0 <= document["minzoom"] <= document["maxzoom"] <= 30
    west, south, east, north = document["bounds"]
    assert -180 <= west < east <= 180 and -85.06 <= south < north <= 85.06
    lon, lat, zoom = document["center"]
    assert west <= lon <= east and south <= lat <= north and isinstance(zoom, int)
    assert document["minzoom"] <= zoom <= document["maxzoom"]
    assert document.get("scheme", "xyz") in ("xyz", "tms")


def test_tilejson_fields_from_layer_bounds():
    response = site().get("/world/tilejson.json", headers={"Host": "tiles.example.com"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    document = json.loads(response.data)
    check_spec(document)
    assert document["tiles"] == ["http://tiles.example.com/world/{z}/{x}/{y}.png"]
    assert document["minzoom"] == 2 and document["maxzoom"] == 14
    assert document["bounds"] == pytest.approx([-10, 35, 30, 70], abs=0.01)
    assert document["center"] == pytest.approx([20, 60, 4])
    assert document["attribution"] == "Natural Earth"
    assert document["name"] == "world"


def test_tilejson_of_a_layer_without_bounds():
    document = json.loads(site().get("/plain/tilejson.json").data)
    check_spec(document)
    assert document["minzoom"] == 0 and document["maxzoom"] == 30
    assert document["bounds"] == pytest.approx([-180, -85.0511, 180, 85.0511], abs=1e-4)
    assert document["tiles"] == ["http://localhost/plain/{z}/{x}/{y}.jpg"]
    assert "attribution" not in document


def test_tilejson_without_any_host_is_path_only():
    config = site().application.config
    status, headers, body = TileStache.requestHandler2(config, "/plain/tilejson.json", script_name="/t")
    assert status == 200
    assert json.loads(body)["tiles"] == ["/t/plain/{z}/{x}/{y}.jpg"]  # same-origin path


def test_tilejson_honours_script_name_and_forwarded_headers():
    client = site()
    response = client.get("/grid/tilejson.json", base_url="http://inner:8000/maps/v1",
                          headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "maps.example.org, inner"})
    document = json.loads(response.data)
    check_spec(document)
    assert document["tiles"] == ["https://maps.example.org/maps/v1/grid/{z}/{x}/{y}.json"]
    # without forwarding headers, the Host the client used
    document = json.loads(client.get("/grid/tilejson.json", base_url="http://inner:8000/maps/v1").data)
    assert document["tiles"] == ["http://inner:8000/maps/v1/grid/{z}/{x}/{y}.json"]
    # a malformed forwarded host is ignored, never echoed
    document = json.loads(client.get("/grid/tilejson.json", base_url="http://inner:8000/",
                                     headers={"X-Forwarded-Host": "evil\"<x>"}).data)
    assert document["tiles"] == ["http://inner:8000/grid/{z}/{x}/{y}.json"]


def test_tiles_url_serves_tiles():
    client = site()
    document = json.loads(client.get("/world/tilejson.json", base_url="http://h/sub").data)
    path = document["tiles"][0].replace("http://h/sub", "").format(z=4, x=8, y=4)
    response = client.get(path, base_url="http://h/sub")
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"


def test_unknown_layer_tilejson_is_404():
    assert site().get("/nope/tilejson.json").status_code == 404


def test_index_lists_layers_with_links():
    response = site().get("/", base_url="http://h/app")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    page = response.data.decode()
    assert "TileStache bellows hello." in page
    for name in ("world", "plain", "grid"):
        assert f'href="/app/{name}/preview.html"' in page and f'href="/app/{name}/tilejson.json"' in page


def test_custom_index_is_kept(tmp_path):
    page = tmp_path / "index.html"
    page.write_text("<p>our maps</p>")
    response = site(str(page)).get("/")
    assert response.data == b"<p>our maps</p>"


def test_vector_layers_of_mvt_layers(tmp_path):
    from pmtiles.tile import Compression, TileType

    from formats_helpers import mvt_tiles, vector_layer_spec, write_archive

    described = [{"id": "squares", "fields": {"label": "String"}, "minzoom": 0, "maxzoom": 9, "description": "d"}]
    archive = write_archive(tmp_path / "v.pmtiles", mvt_tiles(), TileType.MVT, Compression.GZIP,
                            {"vector_layers": described})
    config = TileStache.parseConfig({"layers": {
        "files": vector_layer_spec(tmp_path),
        "archive": {"provider": {"name": "pmtiles", "tileset": str(archive)}, "preview": {"ext": "pbf"}},
        "raster": {"provider": {"name": "mapnik", "mapfile": WORLD}}}})
    client = Client(TileStache.WSGITileServer(config))
    headers = {"Host": "tiles.example.com", "X-Forwarded-Proto": "https"}

    files = json.loads(client.get("/files/tilejson.json", headers=headers).data)
    check_spec(files)
    assert files["tiles"] == ["https://tiles.example.com/files/{z}/{x}/{y}.mvt"]
    assert [(v["id"], sorted(v["fields"]), v["minzoom"], v["maxzoom"]) for v in files["vector_layers"]] == [
        ("areas", ["name", "rank"], 0, 12), ("roads", ["lanes", "ref"], 2, 12), ("towns", ["label"], 0, 12)]

    packed = json.loads(client.get("/archive/tilejson.json", headers=headers, environ_overrides={
        "SCRIPT_NAME": "/maps"}).data)
    check_spec(packed)
    assert packed["tiles"] == ["https://tiles.example.com/maps/archive/{z}/{x}/{y}.pbf"]
    assert packed["minzoom"] == 0 and packed["maxzoom"] == 2  # the archive's zooms
    assert packed["vector_layers"] == [{"id": "squares", "fields": {"label": "String"}, "minzoom": 0,
                                        "maxzoom": 2, "description": "d"}]
    assert "vector_layers" not in json.loads(client.get("/raster/tilejson.json").data)
