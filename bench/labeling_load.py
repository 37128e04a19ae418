"""Load test of the labeling hot path: N labelers take suites and submit them over HTTP.

Starts Crowdlab under uvicorn (several worker processes) on a fresh PostgreSQL database,
seeds a requester, a project, an open pool and N labelers with API tokens, then drives
the labelers with aiohttp/asyncio for a fixed time (take suite → submit, in a loop) and
checks the invariants afterwards: overlap never exceeded, no answer lost, every accepted
suite paid exactly once. The last line printed is one JSON object with the figures.

    python bench/labeling_load.py --duration 20 --labelers 200 --workers 32

Before the load it measures the machine's own floor, PostgreSQL's raw rate (``pgbench``'s
TPC-B-like script, 32 clients, ``--pgbench`` seconds, on a database of its own kept between
runs), and reports the labeling round trips per second against it (issue 17's target: at
least 0.3). ``--pgbench 0`` skips it.

``--upload-rows N``: while the labelers work, the requester uploads an N-row task TSV into a
second pool of the same project, run as a job in a process of its own at a low CPU priority
(as ``crowdlab serve``'s worker); compare the take / submit p95 with a run without it
(issue 17: within 20 % of a quiet pool).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/crowdlab_bench"
OPTIONS = ("cat", "dog", "bird")


def reset_database(url: str) -> None:
    """Drop and create the bench database, then migrate it."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database).unlink(missing_ok=True)
    else:
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

    upgrade(url)


def seed(
    url: str, *, labelers: int, tasks: int, controls: int, overlap: int, insert_tasks: bool = True
) -> dict:
    """Requester, project, open funded pool, tasks, labelers with tokens (bulk inserts).

    ``insert_tasks=False``: the pool is funded for ``tasks`` but left empty (the caller fills
    it, e.g. on the server)."""
    from app.db.models import (
        AnswerOption,
        ApiToken,
        LedgerEntry,
        Pool,
        Project,
        Task,
        User,
    )
    from app.security import hash_password, hash_token

    engine = sa.create_engine(url)
    now = datetime.now(UTC)
    pw = hash_password("bench password 1")
    reward = 5
    budget = -(-tasks * overlap // 9) * reward * 2  # twice what the pool can pay out
    with engine.begin() as conn:

        def insert_one(table, **values):
            return conn.execute(sa.insert(table).values(**values).returning(table.c.id)).scalar()

        requester = insert_one(
            User.__table__,
            email="requester@bench.local",
            name="Bench requester",
            role="requester",
            password_hash=pw,
            is_active=True,
            languages=[],
            adult_allowed=False,
            created_at=now,
        )
        project = insert_one(
            Project.__table__,
            owner_id=requester,
            name="Bench animals",
            public_description="Cats, dogs and birds",
            instructions="Pick the animal.",
            question="What is in the picture?",
            private_comment="",
            status="active",
            task_spec={},
            quality_rules=[],
            created_at=now,
        )
        conn.execute(
            sa.insert(AnswerOption.__table__),
            [
                {
                    "project_id": project,
                    "label": v.title(),
                    "value": v,
                    "position": i,
                    "hotkey": str(i + 1),
                }
                for i, v in enumerate(OPTIONS)
            ],
        )
        pool = insert_one(
            Pool.__table__,
            project_id=project,
            owner_id=requester,
            name="Bench pool",
            public_description="",
            private_comment="",
            pool_type="general",
            status="open",
            overlap=overlap,
            reward_cents=reward,
            general_per_suite=9,
            control_per_suite=1,
            training_per_suite=0,
            time_limit_seconds=600,
            keep_task_order=False,
            priority=0,
            adult_content=False,
            filter_languages=[],
            skill_filters=[],
            quality_rules=[],
            exclude_banned_answers=True,
            auto_accept=True,
            review_period_days=7,
            fee_percent=0.0,
            reserved_cents=budget,
            extra={},
            created_at=now,
            opened_at=now,
        )
        rows = [
            {
                "pool_id": pool,
                "kind": "general",
                "image": f"https://img.bench/{i}.jpg",
                "input_values": {},
                "known_answer": None,
                "taken_count": 0,
                "submitted_count": 0,
                "position": i,
                "created_at": now,
            }
            for i in range(tasks)
        ] + [
            {
                "pool_id": pool,
                "kind": "control",
                "image": f"https://img.bench/c{i}.jpg",
                "input_values": {},
                "known_answer": OPTIONS[i % 3],
                "taken_count": 0,
                "submitted_count": 0,
                "position": tasks + i,
                "created_at": now,
            }
            for i in range(controls)
        ]
        if insert_tasks and rows:
            conn.execute(sa.insert(Task.__table__), rows)
        common = {"user_id": requester, "pool_id": None, "memo": "bench", "created_at": now}
        conn.execute(
            sa.insert(LedgerEntry.__table__),
            [
                {**common, "account": "balance", "kind": "topup", "amount_cents": budget},
                {
                    **common,
                    "account": "balance",
                    "kind": "reserve",
                    "amount_cents": -budget,
                    "pool_id": pool,
                },
                {
                    **common,
                    "account": "reserved",
                    "kind": "reserve",
                    "amount_cents": budget,
                    "pool_id": pool,
                },
            ],
        )
        ids = (
            conn.execute(
                sa.insert(User.__table__).returning(User.__table__.c.id),
                [
                    {
                        "email": f"labeler{i}@bench.local",
                        "name": f"L{i}",
                        "role": "labeler",
                        "password_hash": pw,
                        "is_active": True,
                        "languages": ["EN"],
                        "adult_allowed": False,
                        "created_at": now,
                    }
                    for i in range(labelers)
                ],
            )
            .scalars()
            .all()
        )
        tokens = [secrets.token_urlsafe(24) for _ in ids]
        conn.execute(
            sa.insert(ApiToken.__table__),
            [
                {
                    "user_id": uid,
                    "name": "bench",
                    "token_hash": hash_token(tok),
                    "prefix": tok[:10],
                    "created_at": now,
                }
                for uid, tok in zip(ids, tokens, strict=True)
            ],
        )
    with engine.connect() as conn:  # as an upload does (app.db.engine.refresh_statistics)
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return {"pool_id": pool, "tokens": tokens, "reward_cents": reward}


_UPLOADER = """
import sys
from sqlmodel import Session, select
import workers.queue  # the job queue (jobs run inline here: CROWDLAB_JOBS_IMMEDIATE)
from app.db.engine import get_engine
from app.db.models import User
from app.services.projects.uploads import submit_upload

pool_id, path = int(sys.argv[1]), sys.argv[2]
with Session(get_engine()) as session, open(path, "rb") as tsv:
    requester = session.exec(select(User).where(User.role == "requester")).one()
    outcome = submit_upload(
        session, requester=requester, pool_id=pool_id, kind="tsv", files=[("big.tsv", tsv)]
    )
    job = outcome.job
    session.refresh(job)
    print(job.status, job.result or job.error)
"""


def start_upload(url: str, seeded: dict, rows: int, folder: Path) -> subprocess.Popen:
    """A draft pool beside the seeded one and an ``rows``-row TSV uploaded into it by a job in a
    process of its own (nice 19, jobs run inline there); the process is returned."""
    from app.db.models import Pool

    skip = ("id", "status", "reserved_cents")  # a draft: nothing reserved yet
    columns = [c.name for c in Pool.__table__.columns if c.name not in skip]
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        names = ", ".join(columns)
        second = conn.execute(
            sa.text(
                f"INSERT INTO pool ({names}, status, reserved_cents) SELECT {names}, 'draft', 0 "
                "FROM pool "
                "WHERE id = :id RETURNING id"
            ),
            {"id": seeded["pool_id"]},
        ).scalar_one()
    engine.dispose()
    path = folder / "upload.tsv"
    with open(path, "w") as out:
        out.write("INPUT:image\n")
        for i in range(rows):
            out.write(f"https://img.bench/upload/{i:09d}.jpg\n")
    env = {**os.environ, "CROWDLAB_JOBS_IMMEDIATE": "true", "CROWDLAB_CHECK_IMAGE_URLS": "false"}
    return subprocess.Popen(
        [sys.executable, "-c", _UPLOADER, str(second), str(path)],
        cwd=ROOT,
        env=env,
        preexec_fn=lambda: os.nice(19),
        stdout=subprocess.PIPE,
        text=True,
    )


def watch_upload(url: str, uploader: subprocess.Popen, phases: list) -> None:
    """Note (time, message) each time the upload job's message changes, until it ends."""
    engine = sa.create_engine(url)
    last = None
    with engine.connect() as conn:
        while uploader.poll() is None:
            message = conn.execute(
                sa.text("SELECT message FROM job WHERE kind = 'upload' ORDER BY id DESC LIMIT 1")
            ).scalar()
            conn.rollback()
            short = (message or "").split(":")[0].rstrip("0123456789 ")
            if short != last:
                phases.append((time.monotonic(), message))
                last = short
            time.sleep(0.5)
    engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(env: dict, port: int, processes: int) -> list[subprocess.Popen]:
    """``processes`` single-process servers on one port, connections spread by the kernel."""
    script = str(ROOT / "bench" / "serve_reuseport.py")
    procs = [
        subprocess.Popen([sys.executable, script, str(port)], cwd=ROOT, env=env)
        for _ in range(processes)
    ]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/login", timeout=1).status_code == 200:
                time.sleep(1.0)  # let every process finish starting
                return procs
        except httpx.HTTPError:
            pass
        if any(proc.poll() is not None for proc in procs):
            stop_server(procs)
            raise RuntimeError("a server process exited during start-up")
        time.sleep(0.2)
    stop_server(procs)
    raise RuntimeError("the server did not start within 60 s")


def stop_server(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=30)


def cpu_seconds(servers: list[subprocess.Popen]) -> dict[str, float]:
    """CPU time used so far by the server processes, this process, the whole machine and
    other virtual machines on the same host (Linux ``/proc``; zeros elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    try:
        server = 0.0
        for proc in servers:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            server += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        # user nice system idle iowait irq softirq steal ...: busy here, and the time the
        # hypervisor gave to other machines (a noisy neighbour slows every figure down)
        fields = [int(n) for n in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
        machine = (sum(fields[:3]) + fields[5] + fields[6]) / tick
        stolen = fields[7] / tick
    except (OSError, IndexError, ValueError):
        return dict.fromkeys(("server", "load_generator", "database_and_rest", "stolen"), 0.0)
    own = time.process_time()
    return {
        "server": server,
        "load_generator": own,
        "database_and_rest": machine - server - own,
        "stolen": stolen,
    }


class Stats:
    def __init__(self) -> None:
        self.fetch: list[float] = []
        self.submit: list[float] = []
        self.started = 0.0  # when the load began (time.monotonic())
        self.fetch_at: list[float] = []  # when each ended (time.monotonic())
        self.submit_at: list[float] = []
        self.suites = 0
        self.answers_sent = 0
        self.errors: dict[str, int] = {}
        self.no_tasks = 0

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


async def _post(session, url: str, headers: dict, payload=None) -> tuple[int, dict | str]:
    async with session.post(url, json=payload, headers=headers) as response:
        if response.status == 200:
            return 200, await response.json()
        return response.status, await response.text()


async def labeler_loop(session, token, pool_id, stats, sem, deadline) -> None:
    headers = {"Authorization": f"OAuth {token}"}
    while time.monotonic() < deadline:
        async with sem:
            started = time.perf_counter()
            try:
                status, suite = await _post(
                    session, f"/api/v1/labeler/pools/{pool_id}/suites", headers
                )
            except aiohttp.ClientError as exc:
                stats.error(f"take {type(exc).__name__}")
                continue
            stats.fetch.append(time.perf_counter() - started)
            stats.fetch_at.append(time.monotonic())
        if status == 409:
            stats.no_tasks += 1
            return
        if status != 200:
            stats.error(f"take {status}")
            continue
        answers = {str(t["position"]): random.choice(OPTIONS) for t in suite["tasks"]}
        async with sem:
            started = time.perf_counter()
            try:
                status, result = await _post(
                    session,
                    f"/api/v1/labeler/assignments/{suite['id']}/submit",
                    headers,
                    {"answers": answers},
                )
            except aiohttp.ClientError as exc:
                stats.error(f"submit {type(exc).__name__}")
                continue
            stats.submit.append(time.perf_counter() - started)
            stats.submit_at.append(time.monotonic())
        if status != 200:
            stats.error(f"submit {status}: {str(result)[:120]}")
            continue
        if not result["repeated"]:
            stats.suites += 1
            stats.answers_sent += len(answers)


async def drive(base: str, seeded: dict, *, duration: float, workers: int) -> tuple[Stats, float]:
    stats = Stats()
    sem = asyncio.Semaphore(workers)
    connector = aiohttp.TCPConnector(limit=workers)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as session:
        started = stats.started = time.monotonic()
        deadline = started + duration
        await asyncio.gather(
            *(
                labeler_loop(session, tok, seeded["pool_id"], stats, sem, deadline)
                for tok in seeded["tokens"]
            )
        )
        elapsed = time.monotonic() - started
    return stats, elapsed


def check_invariants(url: str, seeded: dict) -> dict:
    """Overlap violations, answers stored, payout mismatches, slot-counter drift."""
    engine = sa.create_engine(url)
    q = sa.text
    with engine.connect() as conn:
        violations = conn.execute(
            q(
                "SELECT count(*) FROM (SELECT t.id FROM task t JOIN pool p ON p.id = t.pool_id "
                "JOIN answer a ON a.task_id = t.id WHERE t.kind = 'general' "
                "GROUP BY t.id, t.overlap, p.overlap "
                "HAVING count(*) > coalesce(t.overlap, p.overlap)"
                ") v"
            )
        ).scalar()
        violations += conn.execute(
            q(
                "SELECT count(*) FROM task t JOIN pool p ON p.id = t.pool_id "
                "WHERE t.taken_count > coalesce(t.overlap, p.overlap)"
            )
        ).scalar()
        drift = conn.execute(
            q(
                "SELECT count(*) FROM task t LEFT JOIN (SELECT at.task_id, count(*) n "
                "FROM assignment_task at JOIN assignment a ON a.id = at.assignment_id "
                "WHERE a.status IN ('active', 'submitted', 'accepted') GROUP BY at.task_id) live "
                "ON live.task_id = t.id WHERE t.kind = 'general' "
                "AND t.taken_count <> coalesce(live.n, 0)"
            )
        ).scalar()
        duplicates = conn.execute(
            q(
                "SELECT count(*) FROM (SELECT labeler_id, task_id FROM answer a JOIN task t "
                "ON t.id = a.task_id WHERE t.kind = 'general' GROUP BY labeler_id, task_id "
                "HAVING count(*) > 1) d"
            )
        ).scalar()
        stored = conn.execute(q("SELECT count(*) FROM answer")).scalar()
        accepted = conn.execute(
            q("SELECT count(*) FROM assignment WHERE status = 'accepted'")
        ).scalar()
        unpaid_or_double = conn.execute(
            q(
                "SELECT count(*) FROM assignment a LEFT JOIN (SELECT assignment_id, count(*) n, "
                "sum(amount_cents) s FROM ledger_entry WHERE kind = 'earning' "
                "GROUP BY assignment_id) e "
                "ON e.assignment_id = a.id WHERE a.status = 'accepted' "
                "AND (e.n IS NULL OR e.n <> 1 OR e.s <> a.reward_cents)"
            )
        ).scalar()
        balance_mismatch = conn.execute(
            q(
                "SELECT count(*) FROM (SELECT u.id, coalesce((SELECT sum(amount_cents) "
                "FROM ledger_entry l "
                "WHERE l.user_id = u.id AND l.account = 'balance'), 0) bal, "
                "coalesce((SELECT sum(reward_cents) FROM assignment a WHERE a.labeler_id = u.id "
                "AND a.status = 'accepted'), 0) earned FROM user_account u "
                "WHERE u.role = 'labeler') x "
                "WHERE bal <> earned"
            )
        ).scalar()
        reservation_drift = conn.execute(  # the pool's running total against its ledger
            q(
                "SELECT count(*) FROM pool p WHERE p.reserved_cents <> coalesce((SELECT "
                "sum(l.amount_cents) FROM ledger_entry l WHERE l.pool_id = p.id "
                "AND l.user_id = p.owner_id AND l.account = 'reserved'), 0)"
            )
        ).scalar()
    engine.dispose()
    return {
        "overlap_violations": int(violations + duplicates),
        "slot_counter_drift": int(drift),
        "answers_stored": int(stored),
        "accepted_suites": int(accepted),
        "payout_mismatches": int(unpaid_or_double + balance_mismatch + reservation_drift),
    }


PGBENCH_SCALE = 32
"""pgbench's scale: one branch per client (fewer branches would measure their row locks)."""


def pgbench_tps(url: str, seconds: float, clients: int = 32) -> float | None:
    """PostgreSQL's TPC-B-like rate on this machine (transactions per second), on a database
    beside the bench's (initialised once, kept); None without ``pgbench`` or a local server."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "postgresql" or not shutil.which("pgbench") or seconds <= 0:
        return None
    name = f"{parsed.database}_pgbench"
    env = {
        **os.environ,
        "PGHOST": parsed.host or "127.0.0.1",
        "PGPORT": str(parsed.port or 5432),
        "PGUSER": parsed.username or "postgres",
    }
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.exec_driver_sql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").first()
        if not exists:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    if not exists:
        init = ["pgbench", "-i", "-q", "-s", str(PGBENCH_SCALE), name]
        subprocess.run(init, env=env, check=True, capture_output=True)
    threads = min(clients, os.cpu_count() or 1)
    run = ["pgbench", "-c", str(clients), "-j", str(threads), "-T", str(int(seconds)), name]
    out = subprocess.run(run, env=env, check=True, capture_output=True, text=True).stdout
    found = re.search(r"tps = ([0-9.]+)", out)
    return float(found.group(1)) if found else None


def per_5s(ends: list[float], start: float, seconds: float) -> list[int]:
    """How many of ``ends`` (time.monotonic()) fall in each 5 s from ``start`` on."""
    counts = [0] * max(1, int(seconds // 5))
    for at in ends:
        k = int((at - start) // 5)
        if 0 <= k < len(counts):
            counts[k] += 1
    return counts


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    parser.add_argument("--labelers", type=int, default=200)
    parser.add_argument("--workers", type=int, default=32, help="requests in flight at most")
    parser.add_argument("--server-processes", type=int, default=2, help="server processes")
    parser.add_argument(
        "--request-threads",
        type=int,
        default=3,
        help="request threads per server process (CROWDLAB_REQUEST_THREADS)",
    )
    parser.add_argument("--tasks", type=int, default=40_000, help="general tasks in the pool")
    parser.add_argument("--controls", type=int, default=400)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument(
        "--pgbench", type=float, default=10, help="seconds of pgbench before the load (0: none)"
    )
    parser.add_argument(
        "--upload-rows", type=int, default=0, help="a TSV of this many rows uploaded meanwhile"
    )
    args = parser.parse_args(argv)
    tps = pgbench_tps(args.database_url, args.pgbench)
    if tps is not None:
        print(f"pgbench (TPC-B-like, 32 clients, scale {PGBENCH_SCALE}): {tps:.0f} tps")

    data_dir = Path(tempfile.mkdtemp(prefix="crowdlab-bench-"))
    env = {
        **os.environ,
        "CROWDLAB_DATABASE_URL": args.database_url,
        "CROWDLAB_DATA_DIR": str(data_dir),
        "CROWDLAB_SECRET_KEY": "bench-secret",
        "CROWDLAB_JOBS_IMMEDIATE": "true",
        "CROWDLAB_JOBS_IN_PROCESS": "false",
        "CROWDLAB_REQUEST_THREADS": str(args.request_threads),
    }
    os.environ.update(env)
    t0 = time.monotonic()
    reset_database(args.database_url)
    seeded = seed(
        args.database_url,
        labelers=args.labelers,
        tasks=args.tasks,
        controls=args.controls,
        overlap=args.overlap,
    )
    print(f"seeded {args.tasks} tasks, {args.labelers} labelers in {time.monotonic() - t0:.1f} s")
    port = free_port()
    servers = start_server(env, port, args.server_processes)
    uploader, upload = None, {}
    try:
        if args.upload_rows:
            uploader = start_upload(args.database_url, seeded, args.upload_rows, data_dir)
            upload_started = time.monotonic()
            upload_ended: list[float] = []
            watcher = threading.Thread(
                target=lambda: (uploader.wait(), upload_ended.append(time.monotonic())),
                daemon=True,
            )
            watcher.start()
            phases: list[tuple[float, str]] = []  # the upload job's messages as they change
            threading.Thread(
                target=watch_upload, args=(args.database_url, uploader, phases), daemon=True
            ).start()
        before = cpu_seconds(servers)
        stats, elapsed = asyncio.run(
            drive(f"http://127.0.0.1:{port}", seeded, duration=args.duration, workers=args.workers)
        )
        cpu = {k: v - before[k] for k, v in cpu_seconds(servers).items()}
        if uploader is not None:
            upload["running_at_end_of_load"] = uploader.poll() is None
            out, _ = uploader.communicate(timeout=1800)
            watcher.join()
            upload["s"] = round(upload_ended[0] - upload_started, 1)
            upload["rows"] = args.upload_rows
            # the labelers' latencies while the upload ran
            for name in ("fetch", "submit"):
                during = [
                    value
                    for value, at in zip(
                        getattr(stats, name), getattr(stats, f"{name}_at"), strict=True
                    )
                    if upload_started <= at <= upload_ended[0]
                ]
                upload[f"{name}_p95_ms_during"] = round(_pct(during, 95), 1)
                upload[f"{name}_n_during"] = len(during)
            # suites submitted per 5 s from the start of the upload, and when its job's
            # message changed (seconds from that start): which phase slows the labelers
            upload["suites_per_5s"] = per_5s(stats.submit_at, upload_started, elapsed)
            upload["phases"] = [[round(at - upload_started, 1), text] for at, text in phases]
            upload["outcome"] = out.strip()[-300:]
    finally:
        stop_server(servers)
        if uploader is not None and uploader.poll() is None:
            uploader.kill()
    checks = check_invariants(args.database_url, seeded)
    requests = len(stats.fetch) + len(stats.submit)
    figures = {
        "duration_s": round(elapsed, 2),
        "labelers": args.labelers,
        "in_flight": args.workers,
        "server_processes": args.server_processes,
        "request_threads": args.request_threads,
        "suites_per_s": round(stats.suites / elapsed, 1),
        "round_trips_per_s": round(requests / elapsed, 1),
        "fetch_p50_ms": round(_pct(stats.fetch, 50), 1),
        "fetch_p95_ms": round(_pct(stats.fetch, 95), 1),
        "fetch_p99_ms": round(_pct(stats.fetch, 99), 1),
        "submit_p50_ms": round(_pct(stats.submit, 50), 1),
        "submit_p95_ms": round(_pct(stats.submit, 95), 1),
        "submit_p99_ms": round(_pct(stats.submit, 99), 1),
        "suites_submitted": stats.suites,
        "answers_sent": stats.answers_sent,
        "answers_stored": checks["answers_stored"],
        "lost_answers": stats.answers_sent - checks["answers_stored"],
        "overlap_violations": checks["overlap_violations"],
        "slot_counter_drift": checks["slot_counter_drift"],
        "payout_mismatches": checks["payout_mismatches"],
        "http_errors": stats.errors,
        # CPU milliseconds per submitted suite (take + submit): the server processes, this
        # load generator, the rest of the machine (PostgreSQL, mostly), and what the
        # hypervisor gave to other machines meanwhile ("stolen": high means a noisy run)
        "cpu_ms_per_suite": {k: round(v * 1000 / max(stats.suites, 1), 2) for k, v in cpu.items()},
        "labelers_out_of_tasks": stats.no_tasks,
        # suites submitted in each 5 s of the load: flat, or falling as the pool fills up
        "suites_per_5s": per_5s(stats.submit_at, stats.started, elapsed),
        "upload": upload or None,
        "pgbench_tps": round(tps, 1) if tps is not None else None,
        # labeling round trips (takes + submits) per pgbench transaction: the hot path's
        # efficiency against what this machine's PostgreSQL does raw
        "round_trips_per_pgbench_tx": round(requests / elapsed / tps, 3) if tps else None,
    }
    print(
        f"{stats.suites} suites in {elapsed:.1f} s: {figures['suites_per_s']} suites/s, "
        f"{figures['round_trips_per_s']} HTTP round-trips/s"
    )
    print(
        f"fetch  p50 {figures['fetch_p50_ms']} ms  p95 {figures['fetch_p95_ms']} ms  "
        f"p99 {figures['fetch_p99_ms']} ms"
    )
    print(
        f"submit p50 {figures['submit_p50_ms']} ms  p95 {figures['submit_p95_ms']} ms  "
        f"p99 {figures['submit_p99_ms']} ms"
    )
    print(
        f"overlap violations {figures['overlap_violations']}, lost answers "
        f"{figures['lost_answers']} ({stats.answers_sent} sent, {checks['answers_stored']} "
        f"stored), payout mismatches {figures['payout_mismatches']}, "
        f"counter drift {figures['slot_counter_drift']}, errors {stats.errors or 'none'}"
    )
    if stats.fetch:
        print(f"mean fetch {statistics.mean(stats.fetch) * 1000:.1f} ms")
    if tps:
        print(
            f"{figures['round_trips_per_s']} round trips/s against pgbench's {tps:.0f} tps: "
            f"{figures['round_trips_per_pgbench_tx']} (target ≥ 0.3)"
        )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
