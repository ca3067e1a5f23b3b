"""PostGIS source: features and MVT layers straight from the database.

Queries are filtered with the tile envelope and ``&&`` (so the spatial index
is used); MVT is built in the database with ``ST_AsMVT``/``ST_AsMVTGeom`` and
GeoJSON geometry with ``ST_AsGeoJSON``. The SQL is built once, at config load,
from the configuration only; requests add nothing but numbers computed from a
validated z/x/y (the tile bounds) as query parameters.

User SQL may use ``!bbox!`` (the tile envelope in the data's SRID), ``!zoom!``,
``!x!``, ``!y!``, ``!scale_denominator!``, ``!pixel_width!``,
``!pixel_height!``, or the same names as psycopg placeholders
(``%(zoom)s``, ``%(bbox_xmin)s``...).
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time

from ..Errors import ConfigError, KnownUnknown, ServiceUnavailable
from ..Geography import MERCATOR_HALF_WORLD
from .features import Feature, TileArea

log = logging.getLogger(__name__)

# Seconds to wait for a connection: at config load, and from the pool per request.
CONNECT_TIMEOUT = 5
POOL_TIMEOUT = 5.0
POOL_MAX_SIZE = 4
# Seconds the load-time count of invalid geometries may take, per table or query.
VALIDITY_CHECK_TIMEOUT = 2.0

# 0.28 mm per pixel, the OGC standard rendering pixel, for !scale_denominator!.
STANDARD_PIXEL = 0.00028

PARAMETER_NAMES = ("xmin", "ymin", "xmax", "ymax", "tile_srid", "zoom", "x", "y",
                   "scale_denominator", "pixel_width", "pixel_height")
TOKENS = {
    "!bbox!": "{bbox}",
    "!zoom!": "%(zoom)s",
    "!x!": "%(x)s",
    "!y!": "%(y)s",
    "!scale_denominator!": "%(scale_denominator)s",
    "!pixel_width!": "%(pixel_width)s",
    "!pixel_height!": "%(pixel_height)s",
}
CONNECTION_KEYS = ("dbname", "host", "port", "user", "password")
SOURCE_KEYS = CONNECTION_KEYS + ("table", "query", "srid", "geometry_column", "timeout")
INTEGER_TYPES = {"int2", "int4", "int8"}
# Codes spherical mercator had before EPSG:3857: data in them has 3857's coordinates, so it is
# relabelled (ST_SetSRID), never reprojected (PROJ would treat 900913's sphere as a datum).
SRID_ALIASES = {900913: 3857, 3785: 3857}
TEXT_TYPES = {"text", "varchar", "bpchar", "name"}

# -- one connection pool per conninfo, per process ---------------------------

_pools: dict = {}
_pools_pid = os.getpid()
_pools_lock = threading.Lock()


def _forget_pools_after_fork() -> None:
    """A forked child must not share its parent's sockets: start with no pools."""
    global _pools, _pools_pid, _pools_lock
    _pools, _pools_pid, _pools_lock = {}, os.getpid(), threading.Lock()


os.register_at_fork(after_in_child=_forget_pools_after_fork)


def get_pool(conninfo: str, timeout: float):
    """This process's connection pool for a conninfo (made on first use)."""
    from psycopg_pool import ConnectionPool

    if _pools_pid != os.getpid():
        _forget_pools_after_fork()
    pool = _pools.get(conninfo)
    if pool is None:
        with _pools_lock:
            pool = _pools.get(conninfo)
            if pool is None:
                pool = ConnectionPool(conninfo, min_size=1, max_size=POOL_MAX_SIZE, timeout=timeout,
                                      check=ConnectionPool.check_connection, open=False,
                                      reconnect_timeout=0, name="tilestache-vector")
                pool.open(wait=False)
                _pools[conninfo] = pool
    return pool


# -- invalid geometries, counted once per table or query per process ----------

# (conninfo, table, user SQL, SRID, geometry column) -> invalid count, or None when not counted.
_invalid_counts: dict = {}


def count_invalid(conninfo: str, query, geometry_column: str, probe: dict, timeout: float) -> int | None:
    """How many rows of a table/query fail ST_IsValid; None when that took over timeout seconds."""
    import psycopg
    from psycopg import sql

    options = f"-c statement_timeout={max(1, int(timeout * 1000))} -c client_min_messages=warning"
    statement = sql.SQL("SELECT count(*) FROM ({q}) AS q WHERE NOT ST_IsValid(q.{g})").format(
        q=query, g=sql.Identifier(geometry_column))
    try:
        with psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT, autocommit=True, options=options) as conn:
            return int(conn.execute(statement, probe).fetchone()[0])
    except psycopg.Error as error:
        if not isinstance(error, psycopg.errors.QueryCanceled):
            log.info("counting invalid geometries failed: %s", str(error).strip().splitlines()[0])
        return None


# -- SQL building (config time) -----------------------------------------------

def escape_user_sql(text: str) -> str:
    """User SQL with literal % doubled and our tokens / named placeholders turned into parameters."""
    text = text.replace("%", "%%")
    names = "|".join(PARAMETER_NAMES)
    text = re.sub(r"%%\((" + names + r")\)s", r"%(\1)s", text)
    text = text.replace("{", "{{").replace("}", "}}")
    for token, replacement in TOKENS.items():
        text = text.replace(token, replacement)
    return text


def to_srid(geometry, from_srid: int, to_srid: int):
    """SQL of a geometry moved from one SRID to another (relabelled only between SRID_ALIASES)."""
    from psycopg import sql

    if from_srid == to_srid:
        return geometry
    function = "ST_SetSRID" if SRID_ALIASES.get(from_srid, from_srid) == SRID_ALIASES.get(to_srid, to_srid) \
        else "ST_Transform"
    return sql.SQL("{}({}, {})").format(sql.SQL(function), geometry, sql.Literal(to_srid))


def envelope_sql(srid: int, tile_srid: int, prefix: str):
    """SQL of the (grown) tile envelope, in the data's SRID."""
    from psycopg import sql

    box = sql.SQL("ST_MakeEnvelope(%({p}xmin)s, %({p}ymin)s, %({p}xmax)s, %({p}ymax)s, {t})").format(
        p=sql.SQL(prefix), t=sql.Literal(tile_srid))
    return to_srid(box, tile_srid, srid)


class PostGISSource:
    """Features of a table or query in a PostGIS database."""

    def __init__(self, parameters: dict, tile_srid: int, verbose: bool = False) -> None:
        import psycopg
        from psycopg.conninfo import make_conninfo

        unknown = set(parameters) - set(SOURCE_KEYS)
        if unknown:
            raise ConfigError(f"unknown PostGIS parameters {sorted(unknown)} (known: {', '.join(SOURCE_KEYS)})",
                              key="parameters")
        if bool(parameters.get("table")) == bool(parameters.get("query")):
            raise ConfigError("give one of table or query", key="parameters")
        connection = {k: str(parameters[k]) for k in CONNECTION_KEYS if parameters.get(k) is not None}
        self.conninfo = make_conninfo(**connection)
        self.timeout = float(parameters.get("timeout", POOL_TIMEOUT))
        self.tile_srid = tile_srid
        self.verbose = verbose
        self.table_name = str(parameters["table"]) if parameters.get("table") else None
        if self.table_name:
            self.table = sql_identifier(self.table_name)
            self.user_template = "SELECT * FROM {table}"
        else:
            self.table = None
            self.user_template = escape_user_sql(str(parameters["query"]))
        try:
            with psycopg.connect(self.conninfo, connect_timeout=CONNECT_TIMEOUT, autocommit=True) as conn:
                self._describe(conn, parameters)
        except psycopg.OperationalError as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else "connection failed"
            raise ConfigError(f"cannot reach the database: {first}", key="parameters") from None
        except psycopg.Error as error:
            raise ConfigError(f"the table or query does not work: {str(error).strip().splitlines()[0]}",
                              key="parameters") from None

    # -- config time ---------------------------------------------------------

    def _user_query(self, srid: int):
        """The user's SQL with !bbox! filled in for a given data SRID."""
        from psycopg import sql

        return sql.SQL(self.user_template).format(table=self.table, bbox=envelope_sql(srid, self.tile_srid, ""))

    def _describe(self, conn, parameters: dict) -> None:
        """Find the columns, the geometry column and its SRID of the user's table or query."""
        from psycopg import sql

        probe = sample_parameters(self.tile_srid)
        given_srid = parameters.get("srid")
        query = self._user_query(int(given_srid) if given_srid else self.tile_srid)
        cur = conn.execute(sql.SQL("SELECT * FROM ({}) AS q LIMIT 0").format(query), probe)
        names = [column.name for column in cur.description]
        type_names = dict(conn.execute("SELECT oid::int, typname::text FROM pg_type WHERE oid = ANY(%s::int[])",
                                       [[c.type_code for c in cur.description]]).fetchall())
        self.column_types = {c.name: type_names.get(c.type_code, "") for c in cur.description}
        geometry_columns = [n for n in names if self.column_types[n] == "geometry"]
        wanted = parameters.get("geometry_column")
        if wanted:
            if wanted not in geometry_columns:
                raise ConfigError(f"no geometry column {wanted!r} (found: {geometry_columns})", key="parameters")
            self.geometry_column = wanted
        elif geometry_columns:
            self.geometry_column = geometry_columns[0]
        else:
            raise ConfigError("the table or query has no geometry column", key="parameters")
        self.columns = [n for n in names if self.column_types[n] not in ("geometry", "geography", "raster")]

        if given_srid:
            self.srid = int(given_srid)
        else:
            typmod = cur.pgresult.fmod(names.index(self.geometry_column))
            srid = conn.execute("SELECT postgis_typmod_srid(%s)", [typmod]).fetchone()[0] if typmod > 0 else 0
            if not srid and "{bbox}" in self.user_template:
                raise ConfigError("cannot tell the SRID of a query using !bbox!: set parameters.srid",
                                  key="parameters")
            if not srid:
                row = conn.execute(sql.SQL("SELECT ST_SRID({g}) FROM ({q}) AS q WHERE {g} IS NOT NULL LIMIT 1")
                                   .format(g=sql.Identifier(self.geometry_column), q=query), probe).fetchone()
                srid = row[0] if row else 0
            self.srid = int(srid) or self.tile_srid
        self.query = self._user_query(self.srid)

    def check_id_column(self, id_property: str | None) -> None:
        """ConfigError unless id_property names an integer column (MVT feature ids are integers)."""
        if id_property is not None and id_property not in self.columns:
            raise ConfigError(f"no column {id_property!r} for id_property", key="id_property")

    def property_columns(self, whitelist: dict | None, id_property: str | None) -> list[tuple[str, str]]:
        """(column, name) pairs of the properties to select."""
        if whitelist is None:
            return [(c, c) for c in self.columns if c != id_property]
        missing = [c for c in whitelist if c not in self.column_types]
        if missing:
            raise ConfigError(f"no such columns {missing} (known: {self.columns})", key="properties")
        return [(old, new) for old, new in whitelist.items() if old != id_property]

    # -- queries (built once per layer, at config load) ------------------------

    def _tile_geometry(self, spec, geom=None):
        """SQL of a row's geometry in the tile SRID, simplified when the layer says so."""
        from psycopg import sql

        if geom is None:
            geom = sql.SQL("q.{}").format(sql.Identifier(self.geometry_column))
        geom = to_srid(geom, self.srid, self.tile_srid)
        if spec.simplify:
            geom = sql.SQL("ST_SimplifyPreserveTopology({}, %(tolerance_{})s)").format(geom, sql.SQL(str(spec.index)))
        return geom

    def _selected(self, spec, for_mvt: bool):
        """SQL select list of the property (and id) columns, and their names in order."""
        from psycopg import sql

        pairs = self.property_columns(spec.properties, spec.id_property)
        if for_mvt:
            parts = []
            for old, new in pairs:
                column = sql.SQL("q.{}").format(sql.Identifier(old))
                if spec.skip_empty_fields and self.column_types.get(old) in TEXT_TYPES:
                    column = sql.SQL("NULLIF({}, '')").format(column)
                parts.append(sql.SQL("{} AS {}").format(column, sql.Identifier(new)))
            if spec.id_property is not None:  # the feature id, or a property when not an integer
                parts.append(sql.SQL("q.{} AS {}").format(sql.Identifier(spec.id_property),
                                                         sql.Identifier(spec.id_property)))
            return parts, None
        names = [old for old, _ in pairs]
        if spec.id_property is not None and spec.id_property not in names:
            names.append(spec.id_property)
        return [sql.SQL("q.{}").format(sql.Identifier(n)) for n in names], names

    def mvt_id(self, spec) -> bool:
        """True when the layer's id_property is an integer column, usable as MVT feature id."""
        return spec.id_property is not None and self.column_types.get(spec.id_property) in INTEGER_TYPES

    def mvt_query(self, spec):
        """SQL giving (one MVT layer as bytea, number of invalid geometries made valid) for a tile."""
        from psycopg import sql

        columns, _ = self._selected(spec, for_mvt=True)
        tile_box = sql.SQL("ST_MakeEnvelope(%(txmin)s, %(tymin)s, %(txmax)s, %(tymax)s, {})::box2d").format(
            sql.Literal(self.tile_srid))
        geom = sql.SQL("q.{}").format(sql.Identifier(self.geometry_column))
        valid = sql.SQL("ST_IsValid({})").format(geom) if spec.validate else sql.SQL("true")
        made_valid = sql.SQL("CASE WHEN q.__ts_valid THEN q.{g} ELSE ST_MakeValid(q.{g}) END").format(
            g=sql.Identifier(self.geometry_column))
        mvt_geom = sql.SQL("ST_AsMVTGeom({g}, {box}, {extent}, {buffer}, {clip}) AS __ts_geom").format(
            g=self._tile_geometry(spec, made_valid), box=tile_box, extent=sql.Literal(spec.extent),
            buffer=sql.Literal(spec.buffer), clip=sql.Literal(spec.clipped is not False))
        asmvt_args = [sql.Literal(spec.name), sql.Literal(spec.extent), sql.Literal("__ts_geom")]
        if self.mvt_id(spec):
            asmvt_args.append(sql.Literal(spec.id_property))
        rows = sql.SQL("SELECT q.*, {valid} AS __ts_valid FROM ({query}) AS q WHERE {geom} && {env}").format(
            valid=valid, query=self.query, geom=geom, env=envelope_sql(self.srid, self.tile_srid, ""))
        layer = sql.SQL("SELECT ST_AsMVT(s.*, {args}) FROM (SELECT {select} FROM {rows} AS q) AS s "
                        "WHERE s.__ts_geom IS NOT NULL").format(
            args=sql.SQL(", ").join(asmvt_args), select=sql.SQL(", ").join([mvt_geom] + columns),
            rows=sql.SQL("q") if spec.validate else sql.SQL("({})").format(rows))
        if not spec.validate:
            return sql.SQL("SELECT ({}), 0").format(layer)
        return sql.SQL("WITH q AS ({rows}) SELECT ({layer}), (SELECT count(*) FROM q WHERE NOT q.__ts_valid)").format(
            rows=rows, layer=layer)

    def json_query(self, spec):
        """SQL giving (GeoJSON text, was-invalid, columns...) rows for a tile, clipped and transformed."""
        from psycopg import sql

        columns, names = self._selected(spec, for_mvt=False)
        geom = self._tile_geometry(spec)
        invalid = sql.SQL("false")
        if spec.clipped is not False:
            original = sql.SQL("q.{}").format(sql.Identifier(self.geometry_column))
            invalid = sql.SQL("NOT ST_IsValid({})").format(original)
            geom = sql.SQL("ST_Intersection(CASE WHEN ST_IsValid({g}) THEN {g} ELSE ST_MakeValid({g}) END, "
                           "ST_MakeEnvelope(%(cxmin)s, %(cymin)s, %(cxmax)s, %(cymax)s, {t}))").format(
                g=geom, t=sql.Literal(self.tile_srid))
        if not spec.projected and self.tile_srid != 4326:
            geom = sql.SQL("ST_Transform({}, 4326)").format(geom)
        inner = sql.SQL("SELECT {geom} AS __ts_geom, {invalid} AS __ts_invalid{comma}{columns} "
                        "FROM ({query}) AS q WHERE q.{g} && {env}").format(
            geom=geom, invalid=invalid, comma=sql.SQL(", " if columns else ""),
            columns=sql.SQL(", ").join(columns), query=self.query,
            g=sql.Identifier(self.geometry_column), env=envelope_sql(self.srid, self.tile_srid, ""))
        outer = sql.SQL("SELECT ST_AsGeoJSON(s.__ts_geom, {precision}), s.__ts_invalid{comma}{names} "
                        "FROM ({inner}) AS s WHERE s.__ts_geom IS NOT NULL AND NOT ST_IsEmpty(s.__ts_geom)").format(
            precision=sql.Literal(spec.precision), comma=sql.SQL(", " if names else ""),
            names=sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(n)) for n in names),
            inner=inner)
        return outer, names

    def prepare(self, spec) -> None:
        """Check a layer's options against the columns, build its queries once, report invalid geometries."""
        self.check_id_column(spec.id_property)
        self.property_columns(spec.properties, spec.id_property)
        self._queries = getattr(self, "_queries", {})
        self._queries[spec.name] = (self.mvt_query(spec), self.json_query(spec))
        if not spec.validate:
            self.report_invalid(spec.label or spec.name)

    def report_invalid(self, label: str) -> None:
        """Log, once per table or query per process, how many of its geometries are invalid.

        Without ``validate`` MVT tiles hand them to ST_AsMVTGeom as they are (it rebuilds
        polygons in tile space and skips what it cannot encode) and say nothing per tile,
        so this is where they are reported. A query is counted with zoom 0 parameters.
        """
        key = (self.conninfo, self.table_name, self.user_template, self.srid, self.geometry_column)
        if key in _invalid_counts:
            return
        what = f"table {self.table_name}" if self.table_name else "the query (at zoom 0)"
        started = time.perf_counter()
        count = _invalid_counts[key] = count_invalid(self.conninfo, self.query, self.geometry_column,
                                                     sample_parameters(self.tile_srid), VALIDITY_CHECK_TIMEOUT)
        if count is None:
            log.info("%s: validity of the geometries in %s not checked (over %g s); set \"validate\": true "
                     "to repair invalid ones per tile", label, what, VALIDITY_CHECK_TIMEOUT)
        elif count:
            log.warning("%s: %d invalid geometries in %s; MVT tiles repair them per tile only with "
                        "\"validate\": true, otherwise ST_AsMVTGeom rebuilds or skips them unlogged "
                        "(clipped GeoJSON always repairs them)", label, count, what)
        elif self.verbose:
            log.info("%s: all geometries in %s are valid (checked in %.0f ms)",
                     label, what, 1000 * (time.perf_counter() - started))

    def mvt(self, area: TileArea, spec) -> bytes:
        """One MVT layer for a tile (b"" when it has no features)."""
        return mvt_layers([(self, spec)], area)

    def features(self, area: TileArea, spec) -> list[Feature]:
        """The features of a tile, geometry as GeoJSON text (lon/lat unless projected)."""
        query, names = self._queries[spec.name][1]
        grow = spec.clip_grow()
        rows = self.run(query, self._parameters(area, spec, grow, grow))
        invalid = sum(1 for row in rows if row[1])
        if invalid:
            log.warning("layer %s tile %s/%s/%s: made %d invalid geometries valid",
                        spec.name, area.zoom, area.x, area.y, invalid)
        return [Feature(row[0], dict(zip(names, row[2:]))) for row in rows]

    def _parameters(self, area: TileArea, spec, filter_grow: float, clip_grow: float) -> dict:
        params = request_parameters(area, filter_grow, clip_grow)
        if spec.simplify:
            params[f"tolerance_{spec.index}"] = spec.simplify * area.units_per_pixel()
        return params

    # -- request time --------------------------------------------------------

    def run(self, query, params: dict) -> list[tuple]:
        """Rows of a query; a database that is down becomes ServiceUnavailable."""
        import psycopg
        from psycopg_pool import PoolTimeout

        started = time.perf_counter()
        try:
            with get_pool(self.conninfo, self.timeout).connection() as conn:
                rows = conn.execute(query, params).fetchall()
        except (psycopg.OperationalError, PoolTimeout) as error:
            log.debug("PostGIS unavailable: %s", str(error).strip().splitlines()[0] if str(error) else error)
            raise ServiceUnavailable("Database unavailable, try again later") from None
        except psycopg.Error as error:
            log.error("PostGIS query failed: %s", error)
            raise KnownUnknown("Database query failed") from None
        if self.verbose:
            log.info("PostGIS z%s/%s/%s: %d rows in %.1f ms", params.get("zoom"), params.get("x"),
                     params.get("y"), len(rows), 1000 * (time.perf_counter() - started))
        return rows


def same_database(first: tuple, second: tuple) -> bool:
    """True when two (source, spec) pairs can share one MVT query: one database, one buffer."""
    return (isinstance(first[0], PostGISSource) and isinstance(second[0], PostGISSource)
            and first[0].conninfo == second[0].conninfo
            and (first[1].buffer, first[1].extent) == (second[1].buffer, second[1].extent))


def mvt_layers(pairs: list[tuple], area: TileArea) -> bytes:
    """Several MVT layers of one database (see same_database) in one round trip, concatenated."""
    from psycopg import sql

    source, first = pairs[0]
    query = pairs[0][0]._queries[first.name][0] if len(pairs) == 1 else sql.SQL("SELECT * FROM {}").format(
        sql.SQL(", ").join(sql.SQL("({}) AS {}").format(src._queries[spec.name][0], sql.Identifier(f"l{i}"))
                           for i, (src, spec) in enumerate(pairs)))
    params = request_parameters(area, first.buffer / first.extent, 0.0)
    for _, spec in pairs:
        if spec.simplify:
            params[f"tolerance_{spec.index}"] = spec.simplify * area.units_per_pixel()
    row = source.run(query, params)[0]
    for (_, spec), invalid in zip(pairs, row[1::2]):
        if invalid:
            log.warning("layer %s tile %s/%s/%s: made %d invalid geometries valid",
                        spec.name, area.zoom, area.x, area.y, invalid)
    return b"".join(bytes(body) for body in row[0::2] if body)


def sql_identifier(name: str):
    """A possibly schema-qualified table name as a quoted SQL identifier."""
    from psycopg import sql

    return sql.Identifier(*name.split(".", 1))


def sample_parameters(tile_srid: int) -> dict:
    """Query parameters for a zoom 0 tile, to describe the user's SQL."""
    from ModestMaps.Core import Coordinate

    from ..Geography import SphericalMercator, WGS84
    from .features import tile_area

    projection = SphericalMercator() if tile_srid == 3857 else WGS84()
    return request_parameters(tile_area(projection, tile_srid, Coordinate(0, 0, 0)), 0.0, 0.0)


def request_parameters(area: TileArea, filter_grow: float, clip_grow: float) -> dict:
    """Numbers for one tile's query: bounds (and grown bounds), z/x/y and scale."""
    fx = area.grown(filter_grow)
    cx = area.grown(clip_grow)
    # Keep the filter envelope inside the world (PROJ would wrap longitudes past 180 degrees),
    # and away from the poles so that it can be transformed into mercator.
    half_x, half_y = (180.0, 89.9) if area.srid == 4326 else (MERCATOR_HALF_WORLD, MERCATOR_HALF_WORLD)
    fx = (max(fx[0], -half_x), max(fx[1], -half_y), min(fx[2], half_x), min(fx[3], half_y))
    pixel = area.units_per_pixel()
    metres = pixel * (111319.49079327357 if area.srid == 4326 else 1.0)
    return {"xmin": fx[0], "ymin": fx[1], "xmax": fx[2], "ymax": fx[3],
            "cxmin": cx[0], "cymin": cx[1], "cxmax": cx[2], "cymax": cx[3],
            "txmin": area.xmin, "tymin": area.ymin, "txmax": area.xmax, "tymax": area.ymax,
            "tile_srid": area.srid, "zoom": area.zoom, "x": area.x, "y": area.y,
            "pixel_width": pixel, "pixel_height": pixel, "scale_denominator": metres / STANDARD_PIXEL}
