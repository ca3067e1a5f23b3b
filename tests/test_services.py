"""The test services answer for real (see services.py and conftest.py)."""

import io
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

import services


def test_free_port_is_bindable():
    port = services.free_port()
    with socket.socket() as s:
        s.bind(('127.0.0.1', port))


def test_memcached_set_get(memcached):
    import memcache

    client = memcache.Client([memcached.address])
    try:
        key = 'k' + uuid.uuid4().hex
        assert client.set(key, b'\x89PNG tile bytes')
        assert client.get(key) == b'\x89PNG tile bytes'
    finally:
        client.disconnect_all()
    # and over a raw socket, in memcached's text protocol
    with socket.create_connection((memcached.host, memcached.port), timeout=5) as s:
        s.sendall(b'set raw 0 0 5\r\nhello\r\nget raw\r\n')
        answer = b''
        while not answer.endswith(b'END\r\n'):
            answer += s.recv(4096)
    assert answer == b'STORED\r\nVALUE raw 0 5\r\nhello\r\nEND\r\n'


def test_redis_ping(redis_server):
    import redis

    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    try:
        assert client.ping()
        client.set('tile', b'bytes')
        assert client.get('tile') == b'bytes'
    finally:
        client.close()


def test_postgis_version(postgis):
    import psycopg

    assert postgis.dsn == f'host=127.0.0.1 port={postgis.port} dbname=gis user=postgres'
    with psycopg.connect(postgis.dsn) as conn:
        version = conn.execute('SELECT postgis_version()').fetchone()[0]
        assert version.split()[0][0].isdigit()
        extensions = {row[0] for row in conn.execute('SELECT extname FROM pg_extension')}
        assert {'postgis', 'hstore'} <= extensions
        wkt = conn.execute(
            "SELECT ST_AsText(ST_Transform(ST_SetSRID(ST_MakePoint(0, 0), 4326), 3857))"
        ).fetchone()[0]
        assert wkt == 'POINT(0 0)'


def test_s3_bucket_put_get(s3_server):
    import boto3

    client = boto3.client('s3', endpoint_url=s3_server.endpoint_url, region_name='us-east-1')
    bucket = 'tiles-' + uuid.uuid4().hex[:8]
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key='osm/1/0/0.png', Body=b'tile', ContentType='image/png')
    obj = client.get_object(Bucket=bucket, Key='osm/1/0/0.png')
    assert obj['Body'].read() == b'tile'
    assert obj['ContentType'] == 'image/png'
    assert bucket in [b['Name'] for b in s3_server.client().list_buckets()['Buckets']]


def _get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.headers, response.read()


def test_upstream_serves_png_of_asked_size(upstream):
    from PIL import Image

    status, headers, body = _get(upstream.url + '/wms?width=300&height=200&layers=a',)
    assert status == 200
    assert headers['Content-Type'] == 'image/png'
    image = Image.open(io.BytesIO(body))
    assert image.format == 'PNG'
    assert image.size == (300, 200)
    assert image.convert('RGB').getpixel((10, 10)) == upstream.color

    upstream.color = (255, 0, 0, 128)
    _, _, body = _get(upstream.url + '/tile/1/0/0.png')
    image = Image.open(io.BytesIO(body))
    assert image.size == (256, 256)
    assert image.getpixel((0, 0)) == (255, 0, 0, 128)


def test_upstream_records_requests(upstream):
    assert upstream.requests == []
    request = urllib.request.Request(upstream.url + '/tiles/3/2/1.png?width=10&height=20&x=1',
                                     headers={'User-Agent': 'tilestache-test'})
    urllib.request.urlopen(request, timeout=10).read()
    [recorded] = upstream.requests
    assert recorded.method == 'GET'
    assert recorded.path == '/tiles/3/2/1.png'
    assert recorded.query == 'width=10&height=20&x=1'
    assert recorded.params == {'width': '10', 'height': '20', 'x': '1'}
    assert recorded.headers['user-agent'] == 'tilestache-test'
    upstream.clear()
    assert upstream.requests == []


def test_upstream_status_and_notimage(upstream):
    with pytest.raises(urllib.error.HTTPError) as error:
        _get(upstream.url + '/status/404/tile.png')
    assert error.value.code == 404
    status, headers, body = _get(upstream.url + '/notimage/tile.png')
    assert status == 200
    assert headers['Content-Type'].startswith('text/html')
    assert not body.startswith(b'\x89PNG')
    assert [r.path for r in upstream.requests] == ['/status/404/tile.png', '/notimage/tile.png']


def test_upstream_slow(upstream):
    upstream.slow_seconds = 0.3
    started = time.monotonic()
    status, _, _ = _get(upstream.url + '/slow/tile.png')
    assert status == 200
    assert time.monotonic() - started >= 0.3

    upstream.slow_seconds = 30
    with pytest.raises(OSError):  # a client that gives up first times out
        _get(upstream.url + '/slow/tile.png', timeout=0.2)


def test_upstream_stop_releases_slow_requests():
    with services.Upstream() as server:
        server.slow_seconds = 60
        result = {}

        def fetch():
            try:
                result['status'] = _get(server.url + '/slow/x.png', timeout=30)[0]
            except OSError as e:
                result['error'] = e

        thread = threading.Thread(target=fetch)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.requests and time.monotonic() < deadline:
            thread.join(0.01)
        started = time.monotonic()
    thread.join(10)
    assert not thread.is_alive()
    assert time.monotonic() - started < 5
    assert result.get('status') == 200
