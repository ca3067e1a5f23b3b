"""Shared pytest fixtures.

Real services for the whole test run, each started on a free loopback port
the first time a test asks for it and stopped at the end (see services.py):

    memcached     services.Memcached    .host .port .pid .address
    redis_server  services.RedisServer  .host .port .pid .url
    postgis       services.PostGIS      .host .port .pid .dsn .dbname .user .url
    s3_server     services.MotoS3       .host .port .pid .endpoint_url .client()
    upstream      services.Upstream     .url .requests .color .slow_seconds
                  (requests cleared, colour and delay reset for each test)
"""

import os
import sys

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
for path in (TESTS, ROOT):  # `import services`, and TileStache from the checkout
    if path not in sys.path:
        sys.path.insert(0, path)

import services  # noqa: E402


@pytest.fixture(scope='session')
def memcached():
    with services.Memcached() as service:
        yield service


@pytest.fixture(scope='session')
def redis_server():
    with services.RedisServer() as service:
        yield service


@pytest.fixture(scope='session')
def postgis():
    with services.PostGIS() as service:
        yield service


@pytest.fixture(scope='session')
def s3_server():
    with services.MotoS3() as service:
        yield service


@pytest.fixture(scope='session')
def upstream_server():
    with services.Upstream() as service:
        yield service


@pytest.fixture
def upstream(upstream_server):
    upstream_server.reset()
    yield upstream_server
