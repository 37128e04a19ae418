"""Soak test of the production shape under injected faults.

Starts, on this machine, what the README's scaled deployment describes (deploy/ has the
same environment as files): 3 web processes (``crowdlab serve``, one port each, the client
spreading requests over them as a load balancer would) on PostgreSQL (a database of its
own, created here), 2 ``crowdlab worker`` processes on a Redis server of their own
(``redis-server`` on its own port and folder), and media on an S3-compatible server
(moto's, from ``moto[server]``) reached as a user configures it: ``CROWDLAB_MEDIA_URL=
s3://…`` with ``AWS_ENDPOINT_URL_S3`` and keys, through s3fs.

Meanwhile simulated labelers take and submit suites over the JSON API, a requester uploads
tasks (images, stored on S3) and runs aggregations, and a model trains; and faults are
injected on a schedule scaled to ``--duration``:

- ``kill -9`` of a web process every minute (at least once), restarted 5 s later;
- ``pg_terminate_backend`` of every application connection, twice (once in short runs);
- ``kill -9`` of the worker running a training job, and of one running an aggregation
  (each restarted 5 s later; the job's lease then retries it);
- the Redis server stopped for 10 s, then started again (same folder, append-only file);
- the S3 endpoint gone for 10 s during uploads (moto keeps objects in memory only, so
  the soak stops the S3 listener in front of it, as a stopped server would look: refused
  connections, then the same objects when it is back).

Clients behave as a real one would: a connection error or a 502/503/504 is retried on
another web process with a short back-off (a submit retried that way is idempotent: the
server answers the first result); an upload that fails ambiguously is not retried (it is
all or nothing: the check below looks for half-imported ones).

After the load the soak waits for every job to end, then checks the database. The last
line printed is one JSON object; the exit status is 1 when an invariant is broken.

    python bench/soak.py --duration 600          # the bench: 10 minutes
    python bench/soak.py --duration 75           # what tests/soak/test_soak.py runs
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/crowdlab_soak"
REDIS_SERVER = "/usr/bin/redis-server"
BUCKET = "crowdlab-soak-media"
OPTIONS = ("cat", "dog", "bird")
JOB_LEASE_S = 15  # CROWDLAB_JOB_LEASE_SECONDS of the soak's processes
SOAK_APP = "crowdlab-soak"  # the soak's own database connections (never terminated)
RECOVERY_GRACE_S = 5.0  # what the invariant allows after each fault
CLASSES = ("red", "green", "blue")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def missing_services(database_url: str) -> str | None:
    """Why the soak cannot run here (None when it can): PostgreSQL, redis-server, moto."""
    import sqlalchemy as sa

    if not Path(REDIS_SERVER).exists():
        return f"{REDIS_SERVER} is not installed"
    try:
        import moto.server  # noqa: F401
        import s3fs  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install 'moto[server]' s3fs)"
    parsed = sa.make_url(database_url)
    if parsed.get_backend_name() != "postgresql":
        return "the soak needs a PostgreSQL URL"
    try:
        engine = sa.create_engine(
            parsed.set(database="postgres"), connect_args={"connect_timeout": 3}
        )
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any reason means "not here"
        return f"PostgreSQL is not reachable: {str(exc).splitlines()[0]}"
    return None


# --- the S3 listener that can be stopped -------------------------------------------------


class StoppableProxy:
    """A TCP forwarder in front of the S3 server: ``stop()`` closes its listener and every
    connection (clients get refused connections, as from a stopped server), ``start()``
    listens again on the same port."""

    def __init__(self, port: int, target: int) -> None:
        self.port, self.target = port, target
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(128)
        self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def stop(self) -> None:
        sock, self._listener = self._listener, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            try:
                conn.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                conn.close()
            except OSError:
                pass

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# --- the processes -------------------------------------------------------------------------


class Cluster:
    """PostgreSQL database, Redis, S3, 3 web processes and 2 workers, and their faults."""

    def __init__(self, *, database_url: str, webs: int, workers: int, worker_threads: int,
                 request_threads: int, work: Path) -> None:  # fmt: skip
        self.database_url = database_url
        self.work = work
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.redis_port = free_port()
        self.s3_port = free_port()  # moto itself
        self.s3_proxy = StoppableProxy(free_port(), self.s3_port)
        self.web_ports = [free_port() for _ in range(webs)]
        self.webs: dict[int, subprocess.Popen] = {}
        self.workers: list[subprocess.Popen | None] = [None] * workers
        self.worker_threads = worker_threads
        self.redis: subprocess.Popen | None = None
        self.moto: subprocess.Popen | None = None
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "CROWDLAB_DATABASE_URL": database_url,
            "CROWDLAB_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "CROWDLAB_MEDIA_URL": f"s3://{BUCKET}/media",
            "CROWDLAB_JOBS_IN_PROCESS": "false",
            "CROWDLAB_DATA_DIR": str(work / "data"),
            "CROWDLAB_SECRET_KEY": "soak-" + secrets.token_urlsafe(16),
            "CROWDLAB_REQUEST_THREADS": str(request_threads),
            # a dead worker's job is taken over once its heartbeat is this old
            "CROWDLAB_JOB_LEASE_SECONDS": str(JOB_LEASE_S),
            "CROWDLAB_JOB_HEARTBEAT_SECONDS": "1",
            "AWS_ACCESS_KEY_ID": "soak",
            "AWS_SECRET_ACCESS_KEY": "soak-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{self.s3_proxy.port}",
            "OMP_NUM_THREADS": "1",
        }

    # PostgreSQL
    def reset_database(self) -> None:
        import sqlalchemy as sa

        parsed = sa.make_url(self.database_url)
        admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{parsed.database}' AND pid <> pg_backend_pid()"
            )
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{parsed.database}"')
            conn.exec_driver_sql(f'CREATE DATABASE "{parsed.database}"')
        admin.dispose()
        from app.db.migrate import upgrade

        upgrade(self.database_url)

    def terminate_connections(self) -> int:
        """``pg_terminate_backend`` of every connection to the soak's database."""
        import sqlalchemy as sa

        parsed = sa.make_url(self.database_url)
        admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            killed = conn.exec_driver_sql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                f"WHERE datname = '{parsed.database}' AND pid <> pg_backend_pid() "
                f"AND application_name <> '{SOAK_APP}'"
            ).scalar()
        admin.dispose()
        return int(killed or 0)

    # Redis
    def start_redis(self) -> None:
        folder = self.work / "redis"
        folder.mkdir(exist_ok=True)
        self.redis = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.redis_port), "--bind", "127.0.0.1",
             "--dir", str(folder), "--appendonly", "yes", "--save", "",
             "--logfile", str(self.logs / "redis.log")],
        )  # fmt: skip
        if not wait_port(self.redis_port, 10):
            raise RuntimeError("redis-server did not start")

    def stop_redis(self) -> None:
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait(10)
            self.redis = None

    # S3
    def start_s3(self) -> None:
        log = open(self.logs / "s3.log", "ab")  # noqa: SIM115 - the process keeps it
        self.moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.s3_port)],
            stdout=log, stderr=subprocess.STDOUT, env=self.env,
        )  # fmt: skip

    def make_bucket(self) -> None:
        if not wait_port(self.s3_port, 60):
            raise RuntimeError("the S3 server (moto) did not start")
        self.s3_proxy.start()
        import s3fs

        fs = s3fs.S3FileSystem(
            key="soak", secret="soak-secret",
            client_kwargs={"endpoint_url": f"http://127.0.0.1:{self.s3_port}"},
        )  # fmt: skip
        fs.mkdir(BUCKET)

    # web and workers
    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the process keeps it
        return subprocess.Popen([sys.executable, "-m", "app.cli", *args], cwd=ROOT,
                                env=self.env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip

    def start_web(self, port: int) -> None:
        self.webs[port] = self._spawn(f"web-{port}", ["serve", "--port", str(port)])

    def start_worker(self, index: int) -> None:
        threads = str(self.worker_threads)
        self.workers[index] = self._spawn(f"worker-{index}", ["worker", "--threads", threads])

    def start_all(self) -> None:
        for port in self.web_ports:
            self.start_web(port)
        for i in range(len(self.workers)):
            self.start_worker(i)

    def wait_ready(self) -> None:
        for port in self.web_ports:
            if not wait_port(port, 300):  # (minutes on a crowded machine)
                raise RuntimeError(f"web process on port {port} did not start (see {self.logs})")

    def kill_web(self, port: int) -> None:
        proc = self.webs.pop(port)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def kill_worker_pid(self, pid: int) -> int | None:
        for i, proc in enumerate(self.workers):
            if proc is not None and proc.pid == pid:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                self.workers[i] = None
                return i
        return None

    def stop(self) -> None:
        procs = [*self.webs.values(), *(w for w in self.workers if w is not None)]
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.s3_proxy.stop()
        for proc in (self.moto, self.redis):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


# --- seeding -------------------------------------------------------------------------------


def seed(cluster: Cluster, *, labelers: int, tasks: int) -> dict:
    """A requester with a token, an open funded labeling pool (bench/labeling_load.seed),
    labelers with tokens, and a draft pool for image uploads."""
    import sqlalchemy as sa

    from app.db.models import ApiToken, Pool
    from app.security import hash_token
    from bench.labeling_load import seed as seed_labeling

    seeded = seed_labeling(cluster.database_url, labelers=labelers, tasks=tasks,
                           controls=max(tasks // 100, 10), overlap=3)  # fmt: skip
    engine = sa.create_engine(cluster.database_url)
    token = secrets.token_urlsafe(24)
    with engine.begin() as conn:
        requester, project = conn.execute(
            sa.text("SELECT owner_id, project_id FROM pool WHERE id = :id"),
            {"id": seeded["pool_id"]},
        ).one()
        conn.execute(sa.insert(ApiToken.__table__).values(
            user_id=requester, name="soak", token_hash=hash_token(token), prefix=token[:10],
            created_at=sa.func.now()))  # fmt: skip
        template = (
            conn.execute(sa.select(Pool.__table__).where(Pool.__table__.c.id == seeded["pool_id"]))
            .mappings()
            .one()
        )
        values = {k: v for k, v in template.items() if k != "id"}
        values.update(name="Soak uploads", status="draft", reserved_cents=0, opened_at=None)
        upload_pool = conn.execute(
            sa.insert(Pool.__table__).values(**values).returning(Pool.__table__.c.id)
        ).scalar()
    engine.dispose()
    return {**seeded, "requester_token": token, "upload_pool_id": upload_pool,
            "requester_id": requester, "project_id": project}  # fmt: skip


def png(color: tuple[int, int, int], size: int = 16) -> bytes:
    """A small PNG of one colour with noise (every call a different image)."""
    from PIL import Image

    noise = bytes(random.randrange(256) for _ in range(size * size * 3))
    image = Image.frombytes("RGB", (size, size), noise)
    image = Image.blend(image, Image.new("RGB", (size, size), color), 0.8)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def collection_zip(per_class: int) -> bytes:
    colors = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in CLASSES:
            for n in range(per_class):
                archive.writestr(f"Colours/{label}/{n:03d}.png", png(colors[label]))
    return buffer.getvalue()


# --- the clients ---------------------------------------------------------------------------


@dataclass
class Attempt:
    t: float
    kind: str
    ok: bool
    what: str
    port: int
    connection: bool  # the connection failed (else: an HTTP answer)


@dataclass
class Record:
    started: float = field(default_factory=time.monotonic)
    attempts: list[Attempt] = field(default_factory=list)
    submitted: dict[int, int] = field(default_factory=dict)  # assignment -> answers sent
    uploads: dict[str, str] = field(default_factory=dict)  # batch -> created / failed / unknown
    upload_sizes: dict[str, int] = field(default_factory=dict)
    faults: list[dict] = field(default_factory=list)
    server_errors: dict[str, int] = field(default_factory=dict)
    operations: int = 0  # calls, each with its retries
    gave_up: dict[str, int] = field(default_factory=dict)  # calls that failed after retrying
    training_job: int | None = None

    def now(self) -> float:
        return time.monotonic() - self.started

    def note(self, kind: str, ok: bool, what: str, port: int, connection: bool = False) -> None:
        self.attempts.append(Attempt(self.now(), kind, ok, what, port, connection))
        if not ok:
            key = f"{kind} {what}"[:140]
            self.server_errors[key] = self.server_errors.get(key, 0) + 1


class Client:
    """HTTP to the web processes as a load balancer and a polite client would: a process
    that refused a connection is left out for 2 s; connection errors, 503 (the server
    changed nothing: "try again") and, for idempotent calls, 502/504 are retried on the
    next process with a back-off."""

    def __init__(self, session, ports: list[int], record: Record) -> None:
        self.session, self.ports, self.record = session, ports, record
        self.down_until: dict[int, float] = {}

    def _next_port(self, index: int) -> int:
        now = time.monotonic()
        for step in range(len(self.ports)):
            port = self.ports[(index + step) % len(self.ports)]
            if self.down_until.get(port, 0) <= now:
                return port
        return self.ports[index % len(self.ports)]

    async def call(
        self,
        kind: str,
        method: str,
        path: str,
        token: str,
        *,
        retry: bool = True,
        give_up_s: float = 30.0,
        form=None,
        **kwargs,
    ) -> tuple[int | None, object]:
        self.record.operations += 1
        status, body = await self._call(kind, method, path, token, retry=retry,
                                        give_up_s=give_up_s, form=form, **kwargs)  # fmt: skip
        if status is None or status >= 500:
            self.record.gave_up[kind] = self.record.gave_up.get(kind, 0) + 1
        return status, body

    async def _call(self, kind: str, method: str, path: str, token: str, *, retry: bool,
                    give_up_s: float, form, **kwargs) -> tuple[int | None, object]:  # fmt: skip
        headers = {"Authorization": f"OAuth {token}"}
        deadline = time.monotonic() + give_up_s
        delay = 0.2
        index = random.randrange(len(self.ports))
        while True:
            port = self._next_port(index)
            index += 1
            url = f"http://127.0.0.1:{port}{path}"
            if form is not None:
                kwargs["data"] = form()  # (a form can be sent once)
            try:
                async with self.session.request(method, url, headers=headers, **kwargs) as resp:
                    status = resp.status
                    text = await resp.text()
            except (OSError, TimeoutError, aiohttp.ClientError) as exc:
                self.record.note(kind, False, type(exc).__name__, port, connection=True)
                # a request that never reached a server (refused, no connection in time)
                # is always safe to send again; one that may have been handled only when
                # the caller says so (``retry``: idempotent)
                unsent = isinstance(
                    exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError
                )
                if unsent:
                    self.down_until[port] = time.monotonic() + 2.0
                if (not retry and not unsent) or time.monotonic() > deadline:
                    return None, type(exc).__name__
            else:
                ok = status < 500
                self.record.note(kind, ok, "" if ok else f"{status} {text[:100]}", port)
                try:
                    body: object = json.loads(text) if text else None
                except ValueError:
                    body = text
                again = status == 503 or (retry and status in (502, 504))
                if not again or time.monotonic() > deadline:
                    return status, body
                retry_after = resp.headers.get("Retry-After", "")
                if retry_after.isdigit():
                    delay = max(delay, min(float(retry_after), 5.0))
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 2.0)


async def labeler(client: Client, token: str, pool_id: int, stop: asyncio.Event,
                  think: float) -> None:  # fmt: skip
    record = client.record
    while not stop.is_set():
        status, suite = await client.call(
            "take", "POST", f"/api/v1/labeler/pools/{pool_id}/suites", token
        )
        if status == 409:  # out of tasks (or budget): rest
            await asyncio.sleep(1.0)
            continue
        if status != 200 or not isinstance(suite, dict):
            await asyncio.sleep(0.5)
            continue
        answers = {str(t["position"]): random.choice(OPTIONS) for t in suite["tasks"]}
        await asyncio.sleep(think * random.uniform(0.5, 1.5))  # looking at the images
        path = f"/api/v1/labeler/assignments/{suite['id']}/submit"
        status, _ = await client.call("submit", "POST", path, token, json={"answers": answers},
                                      give_up_s=120)  # fmt: skip
        if status == 200:
            record.submitted[int(suite["id"])] = len(answers)


async def uploader(client: Client, seeded: dict, stop: asyncio.Event, batch_size: int) -> None:
    """Image uploads (stored on S3) to the upload pool, one small batch after another."""
    record, token, n = client.record, seeded["requester_token"], 0
    pool = seeded["upload_pool_id"]
    while not stop.is_set():
        n += 1
        batch = f"b{n:05d}"
        images = [
            png((random.randrange(256), random.randrange(256), random.randrange(256)))
            for _ in range(batch_size)
        ]

        def form(batch=batch, images=images) -> aiohttp.FormData:
            data = aiohttp.FormData()
            data.add_field("kind", "images")
            for i, image in enumerate(images):
                data.add_field("files", image, filename=f"{batch}_{i}.png",
                               content_type="image/png")  # fmt: skip
            return data

        record.upload_sizes[batch] = batch_size
        # not retried blindly (it may have been imported before the connection broke);
        # refused connections and 503s are, as the server changed nothing
        status, _ = await client.call("upload", "POST", f"/api/v1/pools/{pool}/uploads",
                                      token, form=form, retry=False, give_up_s=60)  # fmt: skip
        if status is not None and status in (200, 201):
            record.uploads[batch] = "created"
        elif status is not None and status < 500:
            record.uploads[batch] = f"refused {status}"
        else:
            record.uploads[batch] = "unknown"
        await asyncio.sleep(0.5)


async def wait_job(client: Client, token: str, job_id: int, stop_after: float) -> str:
    deadline = time.monotonic() + stop_after
    while time.monotonic() < deadline:
        status, body = await client.call("poll", "GET", f"/api/v1/operations/{job_id}", token)
        if (
            status == 200
            and isinstance(body, dict)
            and body.get("status")
            in ("SUCCESS", "FAIL", "CANCELLED", "succeeded", "failed", "cancelled")
        ):
            return str(body["status"])
        await asyncio.sleep(1.0)
    return "timeout"


async def aggregator(client: Client, seeded: dict, stop: asyncio.Event, every: float) -> None:
    token, pool = seeded["requester_token"], seeded["pool_id"]
    methods = ["ds", "glad", "mv"]
    n = 0
    while not stop.is_set():
        method = methods[n % len(methods)]
        n += 1
        status, body = await client.call("aggregate", "POST", f"/api/v1/pools/{pool}/aggregations",
                                         token, json={"method": method})  # fmt: skip
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            pass


async def import_collection(client: Client, seeded: dict) -> int | None:
    """The training's images: a ZIP of class folders, imported (onto S3) before the load."""
    token = seeded["requester_token"]
    archive = collection_zip(16)

    def form() -> aiohttp.FormData:
        data = aiohttp.FormData()
        data.add_field("name", "Colours")
        data.add_field("val_fraction", "0.25")
        data.add_field("file", archive, filename="colours.zip", content_type="application/zip")
        return data

    status, body = await client.call("collection", "POST", "/api/v1/collections", token,
                                     form=form, retry=False, give_up_s=120)  # fmt: skip
    if status != 201 or not isinstance(body, dict):
        print(f"collection import failed: {status} {str(body)[:200]}", flush=True)
        return None
    if body.get("job_id"):
        await wait_job(client, token, int(body["job_id"]), 120)
    return int(body["id"])


async def trainer(client: Client, seeded: dict, collection_id: int | None, epochs: int) -> None:
    """One training, started with the load; a worker is killed in its middle."""
    if collection_id is None:
        return
    settings = {"collection_id": collection_id, "arch": "test_resnet", "epochs": epochs,
                "batch_size": 8, "lr": 0.01, "image_size": 16, "augmentation": "none",
                "pretrained": False, "device": "cpu"}  # fmt: skip
    token = seeded["requester_token"]
    for _ in range(5):
        # (the first training request of a web process imports torch and timm: on a busy
        # machine that alone can take a minute)
        status, model = await client.call("train", "POST", "/api/v1/models", token,
                                          json=settings, retry=False, give_up_s=300,
                                          timeout=aiohttp.ClientTimeout(total=300))  # fmt: skip
        if status is None or status >= 500:
            # no answer: as a careful client, look whether the training was created before
            # asking again (a training is not something to start twice)
            _, models = await client.call("poll", "GET", f"/api/v1/models?collection_id="
                                          f"{collection_id}", token)  # fmt: skip
            if isinstance(models, list) and models:
                status, model = 202, models[0]
        if status == 202 and isinstance(model, dict) and model.get("job_id"):
            client.record.training_job = int(model["job_id"])
            return
        if status is not None and status < 500:
            break
    print(f"training did not start: {status} {str(model)[:200]}", flush=True)


# --- the faults ----------------------------------------------------------------------------


def job_row(database_url: str, sql: str, **params) -> tuple | None:
    import sqlalchemy as sa

    engine = _engine(database_url)
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).first()


_ENGINES: dict[str, object] = {}


def _engine(url: str):
    import sqlalchemy as sa

    if url not in _ENGINES:  # (named, so that the faults spare the soak's own connections)
        _ENGINES[url] = sa.create_engine(url, pool_pre_ping=True, pool_size=2,
                                         connect_args={"application_name": SOAK_APP})  # fmt: skip
    return _ENGINES[url]


def running_job_worker(database_url: str, kind: str, min_progress: float = 0.0,
                       job_id: int | None = None) -> tuple[int, int] | None:  # fmt: skip
    """(job id, worker pid) of a running job of ``kind``, if any."""
    row = job_row(
        database_url,
        "SELECT id, worker FROM job WHERE status = 'running' AND kind = :kind "
        "AND progress >= :p AND (CAST(:job AS int) IS NULL OR id = :job) ORDER BY id LIMIT 1",
        kind=kind, p=min_progress, job=job_id,
    )  # fmt: skip
    if row is None or not row[1]:
        return None
    return int(row[0]), int(row[1].split(":")[1])


def job_is_running_again(database_url: str, job_id: int, killed_pid: int) -> bool:
    row = job_row(database_url, "SELECT status, worker FROM job WHERE id = :id", id=job_id)
    if row is None:
        return False
    status, worker = row
    if status in ("succeeded", "failed", "cancelled"):
        return True
    return status == "running" and worker is not None and f":{killed_pid}:" not in worker


class Faults:
    """Runs the schedule in a thread; records each fault's window."""

    def __init__(self, cluster: Cluster, record: Record, duration: float, short: bool) -> None:
        self.cluster, self.record, self.duration, self.short = cluster, record, duration, short
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="faults", daemon=True)
        self.lock = threading.Lock()
        self.restarting: set[int] = set()  # web ports killed and not serving again yet
        self.web_kills = 0
        self.skipped_web_kills = 0

    def _sleep_until(self, t: float) -> bool:
        while self.record.now() < t:
            if self.stop.wait(0.2):
                return False
        return True

    def _fault(self, name: str, start: float, end: float | None, **extra) -> dict:
        end_s = None if end is None else round(end, 1)
        fault = {"fault": name, "start_s": round(start, 1), "end_s": end_s, **extra}
        self.record.faults.append(fault)
        print(f"[{self.record.now():6.1f}s] fault {name}: {extra or ''}", flush=True)
        return fault

    def schedule(self) -> list[tuple[float, str]]:
        d = self.duration
        plan: list[tuple[float, str]] = []
        web_kills = (
            [d * 0.12] if self.short else [30.0 + 60.0 * i for i in range(int((d - 30) // 60) + 1)]
        )
        plan += [(t, "kill_web") for t in web_kills if t < d - 10]
        pg = [d * 0.30] if self.short else [d * 0.30, d * 0.80]
        plan += [(t, "pg_terminate") for t in pg]
        plan += [(d * 0.45, "redis_stop"), (d * 0.65, "s3_stop")]
        plan.sort()
        return plan

    def _run(self) -> None:
        threading.Thread(target=self._kill_worker_in_training, daemon=True).start()
        threading.Thread(target=self._kill_worker_in_aggregation, daemon=True).start()
        for t, what in self.schedule():
            if not self._sleep_until(t):
                return
            with self.lock:
                getattr(self, what)()

    def kill_web(self) -> None:
        serving = [p for p in self.cluster.web_ports if p not in self.restarting]
        if len(serving) < 2:  # never the last one: that is an outage, not a fault to ride out
            print(f"[{self.record.now():6.1f}s] web kill skipped: {len(serving)} process(es) "
                  "serving, the others still restarting", flush=True)  # fmt: skip
            self.skipped_web_kills += 1
            return
        port = serving[self.web_kills % len(serving)]
        self.web_kills += 1
        self.restarting.add(port)
        start = self.record.now()
        self.cluster.kill_web(port)
        time.sleep(5.0)
        self.cluster.start_web(port)  # as systemd's Restart=always would, 5 s later
        # the fault lasts until the new process serves (end_s None: not yet)
        fault = self._fault("kill -9 web", start, None, port=port, back_after_s=None)

        def listening_again() -> None:
            if wait_port(port, 600):
                fault["end_s"] = round(self.record.now(), 1)
                fault["back_after_s"] = round(self.record.now() - start, 1)
                self.restarting.discard(port)

        threading.Thread(target=listening_again, daemon=True).start()

    def pg_terminate(self) -> None:
        start = self.record.now()
        killed = self.cluster.terminate_connections()
        self._fault("pg_terminate_backend", start, self.record.now(), connections=killed)

    def redis_stop(self) -> None:
        start = self.record.now()
        self.cluster.stop_redis()
        time.sleep(10.0)
        self.cluster.start_redis()
        self._fault("redis stopped 10 s", start, self.record.now())

    def s3_stop(self) -> None:
        start = self.record.now()
        self.cluster.s3_proxy.stop()
        time.sleep(10.0)
        self.cluster.s3_proxy.start()
        self._fault("s3 stopped 10 s", start, self.record.now())

    def _kill_worker_when(self, kind: str, name: str, min_progress: float, not_before: float,
                          job_filter=None) -> None:  # fmt: skip
        url = self.cluster.database_url
        if not self._sleep_until(not_before):
            return
        while not self.stop.is_set():  # (through the drain too: a training may start late)
            job_id = job_filter() if job_filter else None
            try:
                found = running_job_worker(url, kind, min_progress, job_id)
            except Exception:  # noqa: BLE001 - the database's own fault: look again
                time.sleep(0.5)
                continue
            if found is not None:
                with self.lock:
                    job, pid = found
                    start = self.record.now()
                    index = self.cluster.kill_worker_pid(pid)
                    if index is None:
                        continue
                    time.sleep(5.0)
                    self.cluster.start_worker(index)  # systemd's restart, 5 s later
                    fault = self._fault(name, start, self.record.now(), job=job)
                threading.Thread(target=self._watch_takeover, args=(fault, job, pid, start),
                                 daemon=True).start()  # fmt: skip
                return
            time.sleep(0.05)

    def _watch_takeover(self, fault: dict, job: int, pid: int, killed_at: float) -> None:
        while not self.stop.is_set():
            try:
                again = job_is_running_again(self.cluster.database_url, job, pid)
            except Exception:  # noqa: BLE001 - the database's own fault: look again
                again = False
            if again:
                fault["job_taken_over_after_s"] = round(self.record.now() - killed_at, 1)
                return
            time.sleep(0.2)

    def _kill_worker_in_training(self) -> None:
        self._kill_worker_when("training", "kill -9 worker in training", 0.15, 5.0,
                               job_filter=lambda: self.record.training_job)  # fmt: skip

    def _kill_worker_in_aggregation(self) -> None:
        self._kill_worker_when("aggregation", "kill -9 worker in aggregation", 0.0,
                               self.duration * 0.2)  # fmt: skip


# --- the checks ----------------------------------------------------------------------------


def check(database_url: str, record: Record, seeded: dict) -> dict:
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    q = sa.text
    with engine.connect() as conn:
        stored = {
            a: (n, d)
            for a, n, d in conn.execute(
                q(
                    "SELECT assignment_id, count(*), count(DISTINCT task_id) FROM answer "
                    "GROUP BY assignment_id"
                )
            )  # fmt: skip
        }
        lost = duplicated = 0
        for assignment, sent in record.submitted.items():
            n, distinct = stored.get(assignment, (0, 0))
            lost += max(sent - distinct, 0)
            duplicated += n - distinct
        overlap = conn.execute(q(
            "SELECT count(*) FROM (SELECT t.id FROM task t JOIN pool p ON p.id = t.pool_id "
            "JOIN answer a ON a.task_id = t.id WHERE t.kind = 'general' "
            "GROUP BY t.id, t.overlap, p.overlap HAVING count(*) > coalesce(t.overlap, p.overlap)"
            ") v")).scalar()  # fmt: skip
        overlap += conn.execute(q(
            "SELECT count(*) FROM (SELECT labeler_id, task_id FROM answer a JOIN task t "
            "ON t.id = a.task_id WHERE t.kind = 'general' GROUP BY labeler_id, task_id "
            "HAVING count(*) > 1) d")).scalar()  # fmt: skip
        double_paid = conn.execute(q(
            "SELECT count(*) FROM (SELECT assignment_id FROM ledger_entry WHERE kind = 'earning' "
            "GROUP BY assignment_id HAVING count(*) > 1) d")).scalar()  # fmt: skip
        double_paid += conn.execute(q(
            "SELECT count(*) FROM assignment a JOIN ledger_entry e ON e.assignment_id = a.id "
            "AND e.kind = 'earning' WHERE e.amount_cents <> a.reward_cents")).scalar()  # fmt: skip
        unpaid = conn.execute(q(
            "SELECT count(*) FROM assignment a WHERE a.status = 'accepted' AND NOT EXISTS "
            "(SELECT 1 FROM ledger_entry e WHERE e.assignment_id = a.id AND e.kind = 'earning')"
        )).scalar()  # fmt: skip
        # money in (top-ups) against where it is now: requesters' and labelers' balances
        # (the guarded running rows), pools' reservations (running totals) and fees
        money_in = conn.execute(q(
            "SELECT coalesce(sum(amount_cents), 0) FROM ledger_entry WHERE kind = 'topup'"
        )).scalar()  # fmt: skip
        balances = dict(conn.execute(q(
            "SELECT u.role, coalesce(sum(b.cents), 0) FROM account_balance b "
            "JOIN user_account u ON u.id = b.user_id GROUP BY u.role")).all())  # fmt: skip
        reserved = conn.execute(q("SELECT coalesce(sum(reserved_cents), 0) FROM pool")).scalar()
        fees = -conn.execute(q(
            "SELECT coalesce(sum(amount_cents), 0) FROM ledger_entry WHERE kind = 'fee'"
        )).scalar()  # fmt: skip
        withdrawn = -conn.execute(q(
            "SELECT coalesce(sum(amount_cents), 0) FROM ledger_entry WHERE kind = 'withdrawal'"
        )).scalar()  # fmt: skip
        entries_vs_rows = conn.execute(q(
            "SELECT count(*) FROM (SELECT u.id FROM user_account u LEFT JOIN account_balance b "
            "ON b.user_id = u.id LEFT JOIN (SELECT user_id, sum(amount_cents) s FROM ledger_entry "
            "WHERE account = 'balance' GROUP BY user_id) e ON e.user_id = u.id "
            "WHERE coalesce(b.cents, 0) <> coalesce(e.s, 0)) x")).scalar()  # fmt: skip
        mismatch = int(money_in) - (
            int(balances.get("requester", 0))
            + int(reserved)
            + int(balances.get("labeler", 0))
            + int(fees)
            + int(withdrawn)
        )
        jobs = conn.execute(q(
            "SELECT id, kind, status, coalesce(message, ''), coalesce(error, ''), attempts, "
            "extract(epoch FROM now() - heartbeat_at) FROM job ORDER BY id")).all()  # fmt: skip
        # uploads all or nothing: the tasks of each batch, by the files' names
        per_batch = dict(conn.execute(q(
            "SELECT split_part(m.original_name, '_', 1), count(*) FROM task t "
            "JOIN media_file m ON m.id = t.media_id WHERE t.pool_id = :pool GROUP BY 1"),
            {"pool": seeded["upload_pool_id"]}).all())  # fmt: skip
    engine.dispose()

    # stuck: queued (nobody will run it), running without a heartbeat for a lease (its
    # worker is dead and nobody took it over), or failed without a reason. A job still
    # running with a fresh heartbeat when the drain ended (a resumed training on a slow
    # machine) is alive, and reported apart.
    def alive(j) -> bool:
        return j[2] == "running" and j[6] is not None and float(j[6]) < JOB_LEASE_S

    stuck = [
        {"id": j[0], "kind": j[1], "status": j[2], "message": j[3][:160]}
        for j in jobs
        if (j[2] not in ("succeeded", "failed", "cancelled") and not alive(j))
        or (j[2] == "failed" and not (j[3] or j[4]))
    ]
    still_running = [
        {"id": j[0], "kind": j[1], "attempts": j[5], "message": j[3][:100]}
        for j in jobs
        if alive(j)
    ]
    partial = [b for b, n in per_batch.items() if n not in (0, record.upload_sizes.get(b, -1))]
    lost_uploads = [
        b for b, s in record.uploads.items() if s == "created" and per_batch.get(b, 0) == 0
    ]
    return {
        "lost_answers": lost,
        "duplicated_answers": duplicated,
        "overlap_violations": int(overlap),
        "double_payments": int(double_paid),
        "unpaid_suites": int(unpaid),
        "ledger_mismatch_cents": mismatch,
        "balance_rows_vs_entries": int(entries_vs_rows),
        "stuck_jobs": len(stuck),
        "stuck_job_list": stuck[:10],
        "jobs_still_running": still_running,
        "jobs": {
            "total": len(jobs),
            "succeeded": sum(j[2] == "succeeded" for j in jobs),
            "failed": sum(j[2] == "failed" for j in jobs),
            "retried": sum(j[5] > 1 for j in jobs),
            "failed_reasons": sorted({(j[3] or j[4])[:100] for j in jobs if j[2] == "failed"})[:5],
        },
        "partial_uploads": len(partial) + len(lost_uploads),
        "uploads": {
            "created": sum(s == "created" for s in record.uploads.values()),
            "refused": sum(s.startswith("refused") for s in record.uploads.values()),
            "unknown": sum(s == "unknown" for s in record.uploads.values()),
        },
    }


def _caused_by(fault: dict, attempt: Attempt) -> bool:
    """Whether a failed attempt is one this fault causes: refused or broken connections to
    the killed web process; answers 5xx for the others (the database, Redis, S3)."""
    if fault["fault"] == "kill -9 web":
        return attempt.connection and attempt.port == fault["port"]
    return not attempt.connection


def error_figures(record: Record) -> dict:
    """Error rate outside the faults' windows, and the recovery after each fault."""
    windows = []
    for fault in record.faults:
        if fault["fault"].startswith("kill -9 worker"):
            continue  # jobs' faults: their figure is the takeover time
        end = fault["end_s"] if fault["end_s"] is not None else float("inf")
        windows.append((fault["start_s"], end + RECOVERY_GRACE_S))
    outside = [a for a in record.attempts if not any(s <= a.t <= e for s, e in windows)]
    errors_outside = [a for a in outside if not a.ok]
    recoveries = []
    for fault in record.faults:
        if fault["fault"].startswith("kill -9 worker"):
            continue
        end = fault["end_s"]
        if end is None:  # not over when the load ended (a web process still starting)
            fault["recovery_s"] = None
            continue
        late = [
            a.t for a in record.attempts
            if not a.ok and end <= a.t <= end + 60 and _caused_by(fault, a)
        ]  # fmt: skip
        # errors after the fault ended, until the first clean stretch
        last = end
        for t in sorted(late):
            if t - last > RECOVERY_GRACE_S:
                break
            last = t
        fault["recovery_s"] = round(last - end, 1)
        recoveries.append(last - end)
    return {
        "requests": len(record.attempts),
        "requests_outside_faults": len(outside),
        "errors_outside_faults": len(errors_outside),
        "error_rate_outside_faults": round(len(errors_outside) / max(len(outside), 1), 5),
        "errors_outside_faults_sample": sorted(
            {f"{a.kind} {a.what}"[:120] for a in errors_outside}
        )[:8],
        "max_recovery_s": round(max(recoveries, default=0.0), 1),
    }


# --- main ----------------------------------------------------------------------------------


async def drive(cluster: Cluster, seeded: dict, record: Record, faults: Faults, args) -> None:
    stop = asyncio.Event()
    # idle connections are closed before uvicorn's 5 s keep-alive ends, or a request sent on
    # one the server is closing fails (as a load balancer's upstream keep-alive must be)
    connector = aiohttp.TCPConnector(limit=args.in_flight, keepalive_timeout=4)
    timeout = aiohttp.ClientTimeout(total=60, connect=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        collection = await import_collection(Client(session, cluster.web_ports, Record()), seeded)
        record.started = time.monotonic()  # the load, and the faults' schedule, start now
        faults.thread.start()
        client = Client(session, cluster.web_ports, record)
        epochs = max(8, int(args.duration // 30))
        tasks = [
            asyncio.create_task(labeler(client, tok, seeded["pool_id"], stop, args.think))
            for tok in seeded["tokens"]
        ]
        tasks.append(asyncio.create_task(uploader(client, seeded, stop, args.upload_batch)))
        tasks.append(asyncio.create_task(aggregator(client, seeded, stop, args.aggregate_every)))
        tasks.append(asyncio.create_task(trainer(client, seeded, collection, epochs)))
        last = 0.0
        while record.now() < args.duration:
            await asyncio.sleep(1.0)
            if record.now() - last >= 15:
                last = record.now()
                ok = sum(a.ok for a in record.attempts)
                print(f"[{record.now():6.1f}s] {ok} requests answered, {len(record.submitted)} "
                      f"suites submitted, {len(record.attempts) - ok} failed attempts",
                      flush=True)  # fmt: skip
        stop.set()
        await asyncio.wait(tasks, timeout=130)
        # every job ends: wait for the queue to drain (a dead worker's job is retried)
        deadline = time.monotonic() + args.drain
        while time.monotonic() < deadline:
            row = job_row(
                cluster.database_url,
                "SELECT count(*) FROM job WHERE status IN ('queued', 'running')",
            )
            if not row[0]:
                break
            await asyncio.sleep(1.0)


def run(args) -> dict:
    reason = missing_services(args.database_url)
    if reason:
        raise SystemExit(f"soak: cannot run: {reason}")
    work = Path(tempfile.mkdtemp(prefix="crowdlab-soak-"))
    cluster = Cluster(database_url=args.database_url, webs=args.webs, workers=args.workers,
                      worker_threads=args.worker_threads, request_threads=args.request_threads,
                      work=work)  # fmt: skip
    os.environ.update({k: v for k, v in cluster.env.items() if k.startswith("CROWDLAB_")})
    from app.settings import get_settings

    get_settings.cache_clear()
    record: Record | None = None
    faults: Faults | None = None
    t0 = time.monotonic()
    try:
        cluster.start_redis()
        cluster.start_s3()  # (each process starts while the next step runs)
        cluster.reset_database()
        cluster.start_all()
        seeded = seed(cluster, labelers=args.labelers, tasks=args.tasks)
        cluster.make_bucket()
        cluster.wait_ready()
        print(f"started {args.webs} web processes {cluster.web_ports}, {args.workers} workers, "
              f"redis :{cluster.redis_port}, S3 :{cluster.s3_proxy.port} in "
              f"{time.monotonic() - t0:.1f} s (logs: {cluster.logs})", flush=True)  # fmt: skip
        record = Record()
        faults = Faults(cluster, record, args.duration, short=args.duration < 300)
        asyncio.run(drive(cluster, seeded, record, faults, args))
    finally:
        if faults is not None:
            faults.stop.set()
            with faults.lock:
                pass
        cluster.stop()
        for engine in _ENGINES.values():
            engine.dispose()
    figures = check(args.database_url, record, seeded)
    errors = error_figures(record)
    result = {
        "duration_s": args.duration,
        "web_processes": args.webs,
        "workers": args.workers,
        "labelers": args.labelers,
        "suites_submitted": len(record.submitted),
        **{
            k: figures[k]
            for k in (
                "lost_answers",
                "overlap_violations",
                "double_payments",
                "ledger_mismatch_cents",
                "stuck_jobs",
            )
        },  # fmt: skip
        "error_rate_outside_faults": errors["error_rate_outside_faults"],
        "max_recovery_s": errors["max_recovery_s"],
        "max_job_takeover_s": max(
            (f.get("job_taken_over_after_s", -1) for f in record.faults), default=None
        ),
        "partial_uploads": figures["partial_uploads"],
        "duplicated_answers": figures["duplicated_answers"],
        "unpaid_suites": figures["unpaid_suites"],
        "balance_rows_vs_entries": figures["balance_rows_vs_entries"],
        "requests": errors["requests"],
        "requests_outside_faults": errors["requests_outside_faults"],
        "errors_outside_faults": errors["errors_outside_faults"],
        # what a user saw: calls that still failed after the client's retries
        "operations": record.operations,
        "operations_failed_after_retries": dict(record.gave_up),
        "errors_outside_faults_sample": errors["errors_outside_faults_sample"],
        "failed_attempts": dict(sorted(record.server_errors.items(), key=lambda kv: -kv[1])[:12]),
        "uploads": figures["uploads"],
        "jobs": figures["jobs"],
        "stuck_job_list": figures["stuck_job_list"],
        "jobs_still_running_at_end": figures["jobs_still_running"],
        "faults": record.faults,
        "web_kills_skipped": faults.skipped_web_kills if faults else 0,
        "logs": str(cluster.logs),
    }
    if not args.keep:
        shutil.rmtree(work / "data", ignore_errors=True)
    return result


def violations(result: dict) -> list[str]:
    """The invariants the soak asserts, as sentences (empty when all hold)."""
    broken = []
    for key in ("lost_answers", "overlap_violations", "double_payments", "ledger_mismatch_cents",
                "stuck_jobs", "partial_uploads", "duplicated_answers", "unpaid_suites",
                "balance_rows_vs_entries"):  # fmt: skip
        if result[key]:
            broken.append(f"{key} = {result[key]}")
    if result["error_rate_outside_faults"] >= 0.001:
        broken.append(f"error_rate_outside_faults = {result['error_rate_outside_faults']}")
    if result["max_recovery_s"] > RECOVERY_GRACE_S:
        broken.append(f"max_recovery_s = {result['max_recovery_s']}")
    expected = {"kill -9 web", "pg_terminate_backend", "redis stopped 10 s", "s3 stopped 10 s",
                "kill -9 worker in training", "kill -9 worker in aggregation"}  # fmt: skip
    missing = expected - {f["fault"] for f in result["faults"]}
    if missing:
        broken.append(f"faults not injected: {sorted(missing)}")
    return broken


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--drain", type=float, default=90.0,
                        help="seconds to wait afterwards for every job to end")  # fmt: skip
    parser.add_argument("--webs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-threads", type=int, default=2)
    parser.add_argument("--request-threads", type=int, default=3)
    parser.add_argument("--labelers", type=int, default=30)
    parser.add_argument("--in-flight", type=int, default=12, help="HTTP connections at most")
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--think", type=float, default=1.0,
                        help="seconds a labeler looks at a suite before submitting")  # fmt: skip
    parser.add_argument("--upload-batch", type=int, default=4, help="images per upload")
    parser.add_argument("--aggregate-every", type=float, default=8.0)
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    parser.add_argument("--database-url", default=os.environ.get("SOAK_DATABASE_URL", DEFAULT_PG))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    broken = violations(result)
    for line in broken:
        print(f"INVARIANT BROKEN: {line}")
    print(json.dumps(result))
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
