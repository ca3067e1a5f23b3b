"""A distributed seeding job's shared state in Redis: what it is, how far it got, what failed.

The producer (``tilestache-seed --cluster``) and every worker read and write
the same keys, so any machine can show, resume or cancel a job:

- ``tilestache:job:ID`` (hash): the job's description (layer, configuration
  digest, extension, the seed's options for ``--resume``), its state, task and
  tile totals, and ``position``, how many tasks the producer has sent;
- ``...:counts`` (hash): tiles and metatiles by outcome, summed over workers;
- ``...:done`` (set): indices of finished tasks;
- ``...:progress`` (hash): per unfinished task, "metatiles done:runs started
  there", so a redelivered task goes on where its lost run stopped;
- ``...:failed`` (list): JSON of each failed metatile, its tiles and error;
- ``...:dropped`` (set): tasks a worker gave back (job cancelled or refused);
- ``...:refused`` (hash): worker name -> why it refused the job.
"""
from __future__ import annotations

import hashlib
import json
import time
import uuid

PREFIX = "tilestache:job:"
JOBS = "tilestache:jobs"
# worker name -> process slots, kept by running workers; and a list each appends to when it is ready
WORKERS, WORKERS_READY = "tilestache:workers", "tilestache:workers:ready"

RUNNING, DONE, CANCELLED, REFUSED = "running", "done", "cancelled", "refused"

# Seconds a finished job's keys are kept for --status.
KEEP_FINISHED = 30 * 24 * 3600


class JobError(Exception):
    """An unknown job id or a job that can not do what was asked; the message says which."""


def connect(url: str) -> redis.Redis:
    """A Redis client for the cluster's URL, checked with a PING (ConnectionError when unreachable)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10, decode_responses=True)
    client.ping()
    return client


def config_digest(config_dict: dict) -> str:
    """A short digest of a configuration's JSON, equal for equal configurations on any machine."""
    text = json.dumps(config_dict, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class Job:
    """One seeding job's keys in Redis."""

    def __init__(self, client: redis.Redis, job_id: str) -> None:
        self.client = client
        self.id = job_id
        self.key = PREFIX + job_id

    def _k(self, part: str) -> str:
        return f"{self.key}:{part}"

    @classmethod
    def create(cls, client: redis.Redis, description: dict) -> "Job":
        """A new running job with this description (layer, digest, extension, options, tasks, tiles)."""
        job = cls(client, uuid.uuid4().hex[:12])
        fields = {k: json.dumps(v) for k, v in description.items()}
        fields.update(state=json.dumps(RUNNING), position="0", created=json.dumps(time.time()))
        with client.pipeline() as pipe:
            pipe.hset(job.key, mapping=fields)
            pipe.sadd(JOBS, job.id)
            pipe.execute()
        return job

    @classmethod
    def find(cls, client: redis.Redis, job_id: str) -> "Job":
        """The job with this id, or JobError."""
        job = cls(client, job_id)
        if not client.exists(job.key):
            raise JobError(f"no job {job_id!r} on this cluster")
        return job

    def description(self) -> dict:
        """Everything the job hash holds, decoded."""
        raw = self.client.hgetall(self.key)
        return {k: (int(v) if k == "position" else json.loads(v)) for k, v in raw.items()}

    def state(self) -> str:
        """running, done, cancelled or refused."""
        return json.loads(self.client.hget(self.key, "state") or json.dumps(RUNNING))

    def set_state(self, state: str) -> None:
        """Mark the job; a finished job's keys expire after KEEP_FINISHED."""
        self.client.hset(self.key, "state", json.dumps(state))
        if state == DONE:
            with self.client.pipeline() as pipe:
                for key in (self.key, *(self._k(p) for p in ("counts", "done", "progress", "failed",
                                                              "dropped", "refused", "wake"))):
                    pipe.expire(key, KEEP_FINISHED)
                pipe.execute()

    # -- the producer's side ------------------------------------------------------

    def position(self) -> int:
        """How many tasks the producer has sent."""
        return int(self.client.hget(self.key, "position") or 0)

    def set_position(self, position: int) -> None:
        """Record that tasks below this index have been sent."""
        self.client.hset(self.key, "position", position)

    def done_count(self) -> int:
        """How many tasks have finished."""
        return self.client.scard(self._k("done"))

    def take_dropped(self) -> list[int]:
        """Indices of the tasks workers gave back, removed from the record (the producer sends them again)."""
        with self.client.pipeline() as pipe:
            pipe.smembers(self._k("dropped"))
            pipe.delete(self._k("dropped"))
            members, _ = pipe.execute()
        return sorted(int(m) for m in members)

    def counts(self) -> dict[str, int]:
        """Tiles and metatiles by outcome ("tiles:rendered", "metatiles:failed", ...) and task timings."""
        return {k: int(float(v)) for k, v in self.client.hgetall(self._k("counts")).items()}

    def failures(self) -> list[dict]:
        """Each failed metatile: {"metatile", "tiles", "error"}."""
        return [json.loads(item) for item in self.client.lrange(self._k("failed"), 0, -1)]

    def refusals(self) -> dict[str, str]:
        """Worker name -> why it refused the job."""
        return self.client.hgetall(self._k("refused"))

    # -- a worker's side ----------------------------------------------------------

    def is_done(self, index: int) -> bool:
        """True when the task has finished (a duplicate delivery then does nothing)."""
        return bool(self.client.sismember(self._k("done"), index))

    def start_task(self, index: int, wait_ms: float) -> tuple[int, int]:
        """Note a run of a task starting; (metatiles it already finished, runs started at that point)."""
        field = str(index)
        with self.client.pipeline() as pipe:
            pipe.hget(self._k("progress"), field)
            pipe.hincrbyfloat(self._k("counts"), "task:wait_ms", wait_ms)
            pipe.hincrby(self._k("counts"), "task:runs", 1)
            stored, _, _ = pipe.execute()
        done, runs = (int(p) for p in (stored or "0:0").split(":"))
        self.client.hset(self._k("progress"), field, f"{done}:{runs + 1}")
        return done, runs + 1

    def record(self, index: int, done: int, status: str, tiles: int, failure: dict | None = None) -> str:
        """Count one finished metatile of a task (its done-th) and return the job's state."""
        with self.client.pipeline() as pipe:
            pipe.hincrby(self._k("counts"), f"tiles:{status}", tiles)
            pipe.hincrby(self._k("counts"), f"metatiles:{status}", 1)
            pipe.hset(self._k("progress"), str(index), f"{done}:1")
            if failure is not None:
                pipe.rpush(self._k("failed"), json.dumps(failure))
            pipe.hget(self.key, "state")
            state = pipe.execute()[-1]
        return json.loads(state or json.dumps(RUNNING))

    def pause_task(self, index: int, done: int) -> None:
        """Note that a run handed the rest of its task on to a new message after `done` metatiles."""
        self.client.hset(self._k("progress"), str(index), f"{done}:0")

    def finish_task(self, index: int) -> None:
        """Mark a task finished."""
        with self.client.pipeline() as pipe:
            pipe.sadd(self._k("done"), index)
            pipe.hdel(self._k("progress"), str(index))
            pipe.rpush(self._k("wake"), index)  # the producer waits on this list
            pipe.ltrim(self._k("wake"), -100, -1)
            pipe.execute()

    def drop_task(self, index: int) -> None:
        """Give a task back unfinished (the job was cancelled or this worker refused it)."""
        self.client.sadd(self._k("dropped"), index)

    def refuse(self, worker: str, reason: str) -> None:
        """Record that a worker will not render this job, and why; the job stops."""
        with self.client.pipeline() as pipe:
            pipe.hset(self._k("refused"), worker, reason)
            pipe.hset(self.key, "state", json.dumps(REFUSED))
            pipe.execute()


def worker_slots(client: redis.Redis) -> int:
    """Process slots of the workers that announced themselves (0 when none is running)."""
    return sum(int(v) for v in client.hgetall(WORKERS).values())
