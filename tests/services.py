"""Real services for the test run, each on a free loopback port.

Every class starts its service when constructed and is a context manager;
each instance has at least ``host``, ``port``, ``pid`` and ``stop()``:

    Memcached()   memcached on 127.0.0.1
    RedisServer() redis-server on 127.0.0.1, no persistence
    PostGIS()     a throwaway PostgreSQL cluster with a 'gis' database
                  (extensions postgis and hstore); ``dsn``, ``dbname``, ``user``
    MotoS3()      moto's S3 server; ``endpoint_url``, ``client()``
    Upstream()    an in-process HTTP server that records requests and serves
                  PNG images; ``url``, ``requests``, ``clear()``

External programs are started with subprocess.Popen, log to a file in their
temporary folder (shown in the error when they fail to come up), and are
stopped by pid. Readiness is awaited by polling the port with a deadline.
"""

from __future__ import annotations

import atexit
import glob
import http.client
import io
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = '127.0.0.1'
READY_TIMEOUT = 20.0  # seconds a service gets to come up
POLL_INTERVAL = 0.05  # seconds between two readiness checks
STOP_TIMEOUT = 10.0  # seconds a service gets to exit before it is killed
START_ATTEMPTS = 3  # a free port may be taken by someone else before we bind it


class ServiceError(RuntimeError):
    """A service did not start (the message includes its log)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _is_root() -> bool:
    return os.geteuid() == 0


def _find_program(name: str, *candidates: str) -> str:
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which(name)
    if found:
        return found
    raise ServiceError(f'{name} not found; install it (bash dev.sh test installs it as root)')


def _tail(path: str, limit: int = 4000) -> str:
    try:
        with open(path, 'rb') as f:
            f.seek(0, io.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode('utf-8', 'replace')
    except OSError as e:
        return f'(no log: {e})'


def _ask(port: int, request: bytes, expect: bytes, timeout: float = 1.0) -> bool:
    """Send request to 127.0.0.1:port and tell whether the answer starts with expect."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(request)
        answer = b''
        while len(answer) < len(expect):
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.startswith(expect)


def _signal_and_wait(pid: int, sig: int, timeout: float) -> bool:
    """Send sig to pid (not our child) and wait for it to exit; True if it did."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        # A pidfd becomes readable when the process exits.
        return bool(select.select([pidfd], [], [], timeout)[0])
    finally:
        os.close(pidfd)


def _http_answers(port: int, path: str = '/', timeout: float = 1.0) -> bool:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request('GET', path)
        conn.getresponse().read()
        return True
    finally:
        conn.close()


class Service:
    """Base for a service run as a child process on a free port."""

    name = 'service'

    host: str
    port: int
    pid: int | None

    def __init__(self):
        self.host = HOST
        self.port = 0
        self.pid = None
        self.proc: subprocess.Popen | None = None
        self.dir = tempfile.mkdtemp(prefix=f'tilestache-{self.name}-', dir='/tmp')
        self.log_path = os.path.join(self.dir, f'{self.name}.log')
        self._stopped = False
        atexit.register(self.stop)
        try:
            self._start_with_retries()
        except BaseException:
            self.stop()
            raise

    # -- to implement ------------------------------------------------------

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        """True when the service answers; may raise OSError while it doesn't."""
        raise NotImplementedError

    # -- machinery ---------------------------------------------------------

    def _start_with_retries(self):
        for attempt in range(1, START_ATTEMPTS + 1):
            self.port = free_port()
            try:
                self._start()
                return
            except ServiceError as e:
                self._kill()
                # someone else took the port between free_port() and our bind
                if attempt == START_ATTEMPTS or 'in use' not in str(e):
                    raise

    def _start(self):
        log = open(self.log_path, 'ab')
        try:
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.dir, env=self.environment(), start_new_session=True)
        finally:
            log.close()
        self.pid = self.proc.pid
        self._wait_ready()

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def _wait_ready(self, timeout: float = READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            try:
                # (alive too: someone else may be answering on a port we failed to bind)
                if self.ready() and self.proc.poll() is None:
                    return
            except OSError as e:
                last_error = e
            if time.monotonic() >= deadline:
                raise ServiceError(
                    f'{self.name} did not answer on {self.host}:{self.port} within {timeout:.0f} s'
                    f' (last error: {last_error}); log {self.log_path}:\n{_tail(self.log_path)}')
            # Wait for the process to exit, at most one poll interval.
            try:
                code = self.proc.wait(timeout=POLL_INTERVAL)
            except subprocess.TimeoutExpired:
                continue
            raise ServiceError(
                f'{self.name} exited with status {code} before answering on port {self.port};'
                f' log {self.log_path}:\n{_tail(self.log_path)}')

    def _kill(self):
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            proc.terminate()
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)
        except ProcessLookupError:
            pass

    def stop(self):
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        self._kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def log(self) -> str:
        return _tail(self.log_path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return f'<{type(self).__name__} {self.host}:{self.port} pid={self.pid}>'


class Memcached(Service):
    """memcached on 127.0.0.1, UDP off."""

    name = 'memcached'

    def command(self):
        argv = [_find_program('memcached', '/usr/bin/memcached'),
                '-l', self.host, '-p', str(self.port), '-U', '0', '-m', '64']
        if _is_root():  # memcached refuses to run as root
            argv += ['-u', _unprivileged_user('memcache', 'nobody')]
        return argv

    def ready(self):
        return _ask(self.port, b'version\r\n', b'VERSION ')

    @property
    def address(self) -> str:
        """'127.0.0.1:PORT', as memcache clients take it."""
        return f'{self.host}:{self.port}'


class RedisServer(Service):
    """redis-server on 127.0.0.1, nothing saved to disk."""

    name = 'redis'

    def command(self):
        return [_find_program('redis-server', '/usr/bin/redis-server'),
                '--port', str(self.port), '--bind', self.host,
                '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', self.dir]

    def ready(self):
        return _ask(self.port, b'PING\r\n', b'+PONG')

    @property
    def url(self) -> str:
        return f'redis://{self.host}:{self.port}/0'


def _unprivileged_user(*names: str) -> str:
    for name in names:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            pass
    raise ServiceError(f'none of the users {", ".join(names)} exists')


def _postgres_bindir() -> str:
    """The bin folder of the newest PostgreSQL server, preferring one with PostGIS."""
    found = []
    for initdb in glob.glob('/usr/lib/postgresql/*/bin/initdb'):
        bindir = os.path.dirname(initdb)
        version = os.path.basename(os.path.dirname(bindir))
        try:
            major = float(version)
        except ValueError:
            continue
        has_postgis = os.path.exists(f'/usr/share/postgresql/{version}/extension/postgis.control')
        found.append((has_postgis, major, bindir))
    if not found:
        raise ServiceError('no PostgreSQL server found in /usr/lib/postgresql/*/bin '
                           '(install postgresql and postgresql-N-postgis-3)')
    return max(found)[2]


class PostGIS(Service):
    """A throwaway PostgreSQL cluster with database 'gis' (postgis, hstore).

    Made with initdb and run with pg_ctl in a temporary folder under /tmp, as
    user 'postgres' when we are root. Trust authentication, no fsync.
    """

    name = 'postgis'
    dbname = 'gis'
    user = 'postgres'

    def __init__(self):
        self.bindir = _postgres_bindir()
        super().__init__()

    @property
    def dsn(self) -> str:
        return f'host={self.host} port={self.port} dbname={self.dbname} user={self.user}'

    @property
    def url(self) -> str:
        return f'postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}'

    @property
    def data_dir(self) -> str:
        return os.path.join(self.dir, 'data')

    def _as_owner(self, argv: list[str]) -> list[str]:
        if _is_root():
            return ['runuser', '-u', 'postgres', '--'] + argv
        return argv

    def _run(self, what: str, argv: list[str], as_owner: bool = True, timeout: float = 60):
        if as_owner:
            argv = self._as_owner(argv)
        with open(self.log_path, 'ab') as log:
            log.write(('$ ' + ' '.join(argv) + '\n').encode())
            log.flush()
            result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, cwd=self.dir, timeout=timeout)
        if result.returncode != 0:
            raise ServiceError(f'{what} failed (status {result.returncode}); '
                               f'log {self.log_path}:\n{_tail(self.log_path)}')

    def _start_with_retries(self):
        if _is_root():
            shutil.chown(self.dir, user='postgres', group='postgres')
        open(self.log_path, 'ab').close()
        if _is_root():
            shutil.chown(self.log_path, user='postgres', group='postgres')
        self._run('initdb', [os.path.join(self.bindir, 'initdb'), '-D', self.data_dir, '-U', self.user,
                   '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync'])
        with open(os.path.join(self.data_dir, 'postgresql.conf'), 'a') as conf:
            conf.write(
                '\n# throwaway test cluster\n'
                f"listen_addresses = '{self.host}'\n"
                f"unix_socket_directories = '{self.dir}'\n"
                'fsync = off\n'
                'synchronous_commit = off\n'
                'full_page_writes = off\n')
        super()._start_with_retries()
        self._create_database()

    def _start(self):
        # pg_ctl -w returns once the server accepts connections (or failed to
        # start); the postmaster runs on in the background, its pid is in
        # postmaster.pid.
        self._run('pg_ctl', [os.path.join(self.bindir, 'pg_ctl'), '-D', self.data_dir,
                             '-l', self.log_path, '-o', f'-p {self.port}', '-s',
                             '-w', '-t', str(int(READY_TIMEOUT)), 'start'])
        with open(os.path.join(self.data_dir, 'postmaster.pid')) as f:
            self.pid = int(f.readline())

    def _psql(self, dbname: str, sql: str):
        self._run('psql', [os.path.join(self.bindir, 'psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1',
                   '-h', self.host, '-p', str(self.port), '-U', self.user, '-d', dbname,
                   '-c', sql], as_owner=False)

    def _create_database(self):
        self._psql('postgres', f'CREATE DATABASE {self.dbname}')
        self._psql(self.dbname, 'SET client_min_messages = warning; '
                                'CREATE EXTENSION postgis; CREATE EXTENSION hstore;')

    def _kill(self):
        pidfile = os.path.join(self.data_dir, 'postmaster.pid')
        pid, self.pid = self.pid, None
        if pid is None:  # pg_ctl start failed or timed out: is a postmaster left?
            try:
                with open(pidfile) as f:
                    pid = int(f.readline())
            except (OSError, ValueError):
                return
        if not os.path.exists(pidfile):
            return
        try:
            self._run('pg_ctl stop', [os.path.join(self.bindir, 'pg_ctl'), '-D', self.data_dir,
                       '-m', 'fast', '-s', '-w', '-t', str(int(STOP_TIMEOUT)), 'stop'])
            return
        except (ServiceError, subprocess.TimeoutExpired):
            pass
        # pg_ctl could not stop it: SIGQUIT is postgres' immediate shutdown
        if not _signal_and_wait(pid, signal.SIGQUIT, STOP_TIMEOUT):
            _signal_and_wait(pid, signal.SIGKILL, STOP_TIMEOUT)


class MotoS3(Service):
    """moto's S3 server; clients use ``endpoint_url`` and the 'testing' keys."""

    name = 'moto'
    access_key = 'testing'
    secret_key = 'testing'
    region = 'us-east-1'

    # Set in os.environ too, so that any boto3 client in the test process
    # uses fake credentials and never real ones.
    ENV = {
        'AWS_ACCESS_KEY_ID': access_key,
        'AWS_SECRET_ACCESS_KEY': secret_key,
        'AWS_SESSION_TOKEN': 'testing',
        'AWS_SECURITY_TOKEN': 'testing',
        'AWS_DEFAULT_REGION': region,
        'AWS_REGION': region,
    }

    def __init__(self):
        os.environ.update(self.ENV)
        for name in ('AWS_PROFILE', 'AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE'):
            os.environ.pop(name, None)
        super().__init__()

    def command(self):
        return [sys.executable, '-m', 'moto.server', '-H', self.host, '-p', str(self.port)]

    def environment(self):
        env = dict(os.environ)
        env.update(self.ENV)
        return env

    def ready(self):
        return _http_answers(self.port, '/')

    @property
    def endpoint_url(self) -> str:
        return f'http://{self.host}:{self.port}'

    url = endpoint_url

    def client(self, service: str = 's3'):
        """A boto3 client for this server."""
        import boto3
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=self.region,
                            aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key)

    def reset(self):
        """Forget all buckets and objects."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request('POST', '/moto-api/reset')
            conn.getresponse().read()
        finally:
            conn.close()


@dataclass
class RecordedRequest:
    """One request the Upstream received."""

    method: str
    path: str  # without the query string
    query: str  # the raw query string, '' when none
    headers: Message  # case-insensitive: headers['user-agent']
    body: bytes = b''
    params: dict[str, str] = field(default_factory=dict)  # query, first value of each name

    @property
    def target(self) -> str:
        return self.path + ('?' + self.query if self.query else '')


class Upstream:
    """An HTTP server in this process, for providers that fetch over HTTP.

    Records every request in ``requests`` (thread-safe; ``clear()`` empties it)
    and answers:

    - ``/status/NNN...``: status NNN with a short text body;
    - ``/slow/...``: waits ``slow_seconds`` (released early by ``stop()``),
      then answers like the default;
    - ``/notimage/...``: 200 text/html that is not an image;
    - a path set in ``bodies`` (path -> (content type, bytes)): exactly those bytes;
    - anything else: a PNG of solid ``color`` (RGB or RGBA tuple) sized by the
      query's ``width`` and ``height``, else 256x256.
    """

    DEFAULT_COLOR = (0, 128, 255)
    DEFAULT_SLOW_SECONDS = 5.0

    def __init__(self):
        self.host = HOST
        self.color: tuple[int, ...] = self.DEFAULT_COLOR
        self.slow_seconds = self.DEFAULT_SLOW_SECONDS
        self.bodies: dict[str, tuple[str, bytes]] = {}
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._png_cache: dict[tuple, bytes] = {}
        self._server = ThreadingHTTPServer((self.host, 0), _make_handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.pid = os.getpid()
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={'poll_interval': 0.1},
                                        name=f'upstream-{self.port}', daemon=True)
        self._thread.start()
        self._stopped = False

    @property
    def url(self) -> str:
        return f'http://{self.host}:{self.port}'

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear(self):
        with self._lock:
            self._requests.clear()

    def reset(self):
        """Forget requests and restore the default colour and delay."""
        self.clear()
        self.bodies = {}
        self.color = self.DEFAULT_COLOR
        self.slow_seconds = self.DEFAULT_SLOW_SECONDS

    def _record(self, request: RecordedRequest):
        with self._lock:
            self._requests.append(request)

    def png(self, width: int, height: int, color: tuple[int, ...] | None = None) -> bytes:
        from PIL import Image

        color = tuple(color if color is not None else self.color)
        key = (width, height, color)
        data = self._png_cache.get(key)
        if data is None:
            mode = 'RGBA' if len(color) == 4 else 'RGB'
            buf = io.BytesIO()
            Image.new(mode, (width, height), color).save(buf, 'PNG')
            data = self._png_cache[key] = buf.getvalue()
        return data

    def stop(self):
        if self._stopped:
            return
        self._stopped = True
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=STOP_TIMEOUT)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return f'<Upstream {self.url}>'


def _size_param(params: dict[str, str], name: str) -> int:
    try:
        return min(max(int(params[name]), 1), 4096)
    except (KeyError, ValueError):
        return 256


def _make_handler(upstream: Upstream):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'
        server_version = 'TileStacheTestUpstream/1.0'
        timeout = 30  # idle keep-alive connections end

        def log_message(self, format, *args):
            pass

        def _handle(self):
            split = urllib.parse.urlsplit(self.path)
            params = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
            length = int(self.headers.get('Content-Length') or 0)
            body = self.rfile.read(length) if length else b''
            upstream._record(RecordedRequest(self.command, split.path, split.query,
                                             self.headers, body, params))
            path = split.path

            if path in upstream.bodies:
                return self._send(200, *upstream.bodies[path])
            if path.startswith('/status/'):
                code_text = path[len('/status/'):].split('/', 1)[0]
                try:
                    code = int(code_text)
                except ValueError:
                    code = 400
                return self._send(code, 'text/plain; charset=utf-8',
                                  f'status {code}\n'.encode())
            if path.startswith('/notimage/'):
                return self._send(200, 'text/html; charset=utf-8',
                                  b'<html><body>this is not an image</body></html>\n')
            if path.startswith('/slow/'):
                upstream._released.wait(upstream.slow_seconds)
            width, height = _size_param(params, 'width'), _size_param(params, 'height')
            self._send(200, 'image/png', upstream.png(width, height))

        def _send(self, code: int, content_type: str, body: bytes):
            self.send_response(code)
            if code < 200 or code in (204, 304):
                self.end_headers()
                return
            self.send_header('Content-Type', content_type)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            if self.command != 'HEAD':
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _handle

    return Handler
