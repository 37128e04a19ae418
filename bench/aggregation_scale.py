"""Benchmark: aggregating a pool of millions of answers stored in PostgreSQL, end to end.

Fills a fresh PostgreSQL database with one pool of a simulated crowd (``--answers``, default
3 million; ``--overlap`` answers a task, ``--control`` share of the tasks as control tasks with
their true label) by ``COPY`` (foreign-key triggers off while filling, then ``ANALYZE``), then
runs an aggregation of the pool as the product does (``start_aggregation`` with jobs run
inline: the job reads the answers packed by the server into numpy arrays, fits, writes one
label per task and the labelers' figures). Reported: the fill time, the job's own split (load,
fit, write) and its whole wall time, the algorithm alone (the same method fitted on the same
coded answers already in memory) and the ratio of the job's wall time to the algorithm's.

The job runs as in a worker that has its job modules imported; under ``run_bench.sh`` the
PostgreSQL backends serving the bench join its CPU cgroup (``share_cpu_priority``), so the
job's queries and the in-memory baseline run at the same priority on a busy machine.

``--reuse`` keeps a database an earlier run filled with the same arguments (it migrates it to
head and deletes its aggregation runs; the crowd is simulated again from the seed, which the
in-memory baseline needs): only the aggregation is measured again.

Usage:
    python bench/aggregation_scale.py [--db URL] [--answers 3000000] [--method auto] [--reuse]

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/crowdlab_aggscale"
SUITE = 10
"""Tasks per assignment (suite) in the filled pool."""


def share_cpu_priority(url: str) -> None:
    """Run the database server's side of the job at the bench's own CPU priority.

    ``run_bench.sh`` starts the bench in a CPU cgroup of high weight; the PostgreSQL backends
    that serve it are the server's processes, outside it, so on a busy machine the job's
    queries would wait behind other work while the in-memory baseline does not. When the
    server is on this machine and the bench is in a CPU cgroup other than the root, each new
    connection's backend joins that cgroup (where it may: otherwise nothing changes).
    """
    host = sa.make_url(url).host or "localhost"
    if host not in ("localhost", "127.0.0.1", "::1"):
        return
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return
    groups = [line.split(":", 2) for line in lines if line.count(":") >= 2]
    found = [path for _, names, path in groups if "cpu" in names.split(",") and path != "/"]
    if not found:
        return
    procs = Path("/sys/fs/cgroup/cpu") / found[0].lstrip("/") / "cgroup.procs"

    @sa.event.listens_for(sa.engine.Engine, "connect")
    def join_cgroup(dbapi_connection: Any, record: Any) -> None:
        pid = getattr(getattr(dbapi_connection, "info", None), "backend_pid", None)
        if pid:
            try:
                procs.write_text(str(pid))
            except OSError:
                pass


def reset_database(url: str) -> None:
    """Drop and create the bench database, then migrate it."""
    parsed = sa.make_url(url)
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


def _copy(cursor: Any, table: str, columns: list[str], lines: Any) -> None:
    """``COPY table (columns) FROM STDIN`` of text lines, written in blocks of ~8 MiB."""
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with cursor.copy(sql) as copy:
        buffer = io.StringIO()
        for line in lines:
            buffer.write(line)
            if buffer.tell() > 8 << 20:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


def _set_sequence(cursor: Any, table: str) -> None:
    cursor.execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
    )


def simulate(n_tasks: int, args: argparse.Namespace) -> Any:
    """The bench's crowd: the same answers for the same arguments (a reused database's
    in-memory baseline needs them again)."""
    from aggregation import simulate_crowd

    return simulate_crowd(
        n_tasks,
        args.workers,
        n_labels=args.labels,
        overlap=args.overlap,
        accuracy=(0.55, 0.95),
        spammers=0.2,
        adversaries=0.05,
        seed=args.seed,
    )


def fill(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """A requester, labelers, a project with its options, one pool, its tasks and answers."""
    from app.db.models import AnswerOption, Pool, Project, User
    from app.security import hash_password

    started = time.perf_counter()
    n_tasks = args.answers // args.overlap
    crowd = simulate(n_tasks, args)
    simulated = time.perf_counter()
    engine = sa.create_engine(url)
    now = datetime.now(UTC).isoformat()
    labels = sorted(crowd.truth.unique())
    with engine.begin() as conn:
        from sqlmodel import Session

        with Session(bind=conn) as session:
            requester = User(
                email="requester@scale.local",
                name="Scale requester",
                role="requester",
                password_hash=hash_password("bench password 1"),
            )
            session.add(requester)
            session.flush()
            project = Project(owner_id=requester.id, name="Scale project")
            session.add(project)
            session.flush()
            for i, value in enumerate(labels):
                session.add(
                    AnswerOption(project_id=project.id, label=value, value=value, position=i)
                )
            pool = Pool(
                project_id=project.id,
                owner_id=requester.id,
                name="Scale pool",
                status="closed",
                overlap=args.overlap,
            )
            session.add(pool)
            session.flush()
            requester_id, pool_id = requester.id, pool.id
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.execute("SET session_replication_role = replica")  # no FK triggers while filling
        base_user = requester_id + 1
        _copy(
            cursor,
            "user_account",
            [
                "id",
                "email",
                "name",
                "role",
                "password_hash",
                "is_active",
                "languages",
                "adult_allowed",
                "created_at",
            ],  # fmt: skip
            (
                f"{base_user + w}\tlabeler{w}@scale.local\tLabeler {w}\tlabeler\t-\tt\t[]\tf"
                f"\t{now}\n"
                for w in range(args.workers)
            ),
        )
        task_codes, task_names = pd.factorize(crowd.answers["task"])
        worker_codes = pd.Index(crowd.kinds.index).get_indexer(crowd.answers["worker"])
        truth = crowd.truth.reindex(task_names).to_numpy()
        rng = np.random.default_rng(args.seed)
        control = rng.random(len(task_names)) < args.control
        _copy(
            cursor,
            "task",
            [
                "id",
                "pool_id",
                "kind",
                "image",
                "input_values",
                "known_answer",
                "taken_count",
                "submitted_count",
                "position",
                "created_at",
            ],  # fmt: skip
            (
                f"{t + 1}\t{pool_id}\t{'control' if control[t] else 'general'}\t"
                f"https://img.example/{t}.png\t{{}}\t{truth[t] if control[t] else chr(92) + 'N'}"
                f"\t{args.overlap}\t{args.overlap}\t{t}\t{now}\n"
                for t in range(len(task_names))
            ),
        )
        # suites: each labeler's answers in runs of SUITE tasks
        order = np.argsort(worker_codes, kind="stable")
        sorted_workers = worker_codes[order]
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_workers)) + 1]
        rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        new_suite = (rank % SUITE) == 0
        suite_of_sorted = np.cumsum(new_suite) - 1
        suite = np.empty_like(suite_of_sorted)
        suite[order] = suite_of_sorted
        suite_worker = sorted_workers[new_suite]
        expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        _copy(
            cursor,
            "assignment",
            ["id", "pool_id", "labeler_id", "status", "reward_cents", "created_at", "expires_at"],
            (
                f"{s + 1}\t{pool_id}\t{base_user + w}\taccepted\t0\t{now}\t{expires}\n"
                for s, w in enumerate(suite_worker.tolist())
            ),
        )
        values = crowd.answers["label"].to_numpy()
        _copy(
            cursor,
            "answer",
            [
                "assignment_id",
                "task_id",
                "pool_id",
                "labeler_id",
                "value",
                "excluded",
                "created_at",
            ],  # fmt: skip
            (
                f"{s + 1}\t{t + 1}\t{pool_id}\t{base_user + w}\t{v}\tf\t{now}\n"
                for s, t, w, v in zip(
                    suite.tolist(),
                    task_codes.tolist(),
                    worker_codes.tolist(),
                    values.tolist(),
                    strict=True,
                )
            ),
        )
        cursor.execute("SET session_replication_role = origin")
        for table in ("user_account", "task", "assignment", "answer"):
            _set_sequence(cursor, table)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return {
        "pool_id": pool_id,
        "requester_id": requester_id,
        "answers": len(crowd.answers),
        "tasks": len(task_names),
        "control_tasks": int(control.sum()),
        "workers": args.workers,
        "labels": len(labels),
        "simulate_s": round(simulated - started, 2),
        "fill_s": round(time.perf_counter() - simulated, 2),
        "crowd": crowd,
        "control": control,
        "task_names": task_names,
    }


def reuse(url: str, args: argparse.Namespace) -> dict[str, Any] | None:
    """The fixture of a database an earlier run filled with the same arguments, else None."""

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT p.id, p.owner_id, (SELECT count(*) FROM answer a WHERE a.pool_id = p.id) "
                "FROM pool p WHERE p.name = 'Scale pool'"
            ).first()
    except sa.exc.DBAPIError:  # no such database, or not filled
        return None
    finally:
        engine.dispose()
    n_tasks = args.answers // args.overlap
    if row is None or row[2] != n_tasks * args.overlap:
        return None
    from app.db.migrate import upgrade

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM aggregation_run")
    engine.dispose()
    upgrade(url)
    engine = sa.create_engine(url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE aggregated_label")
    engine.dispose()
    started = time.perf_counter()
    crowd = simulate(n_tasks, args)
    task_names = pd.factorize(crowd.answers["task"])[1]
    control = np.random.default_rng(args.seed).random(len(task_names)) < args.control
    return {
        "pool_id": row[0],
        "requester_id": row[1],
        "answers": len(crowd.answers),
        "tasks": len(task_names),
        "control_tasks": int(control.sum()),
        "workers": args.workers,
        "labels": len(crowd.truth.unique()),
        "simulate_s": round(time.perf_counter() - started, 2),
        "fill_s": None,
        "reused": True,
        "crowd": crowd,
        "control": control,
        "task_names": task_names,
    }


def aggregate(pool_id: int, requester_id: int, method: str) -> dict[str, Any]:
    """One aggregation run as the product runs it (the job inline); its wall time and split."""
    import workers.queue  # noqa: F401  (a worker has its job modules imported before a job)
    from app.db.engine import session_scope
    from app.db.models import AggregationRun, Job, User
    from app.services.aggregations.runs import start_aggregation

    with session_scope() as session:
        requester = session.get(User, requester_id)
        started = time.perf_counter()
        run = start_aggregation(session, requester=requester, pool_id=pool_id, method=method)
        wall = time.perf_counter() - started
        run = session.get(AggregationRun, run.id)
        job = session.get(Job, run.job_id)
        if run.status != "succeeded":
            raise SystemExit(f"aggregation {run.status}: {run.error}")
        return {
            "job_wall_s": round(wall, 2),
            **job.result["timings"],
            "method_used": job.result.get("method_used"),
            "mean_confidence": run.mean_confidence,
        }


def algorithm_alone(fixture: dict[str, Any], method: str) -> dict[str, Any]:
    """The same method on the same answers, coded in memory: the algorithm's own time."""
    from aggregation import encode, get_method

    crowd = fixture["crowd"]
    control = fixture["control"]
    names = fixture["task_names"]
    known = crowd.truth.reindex(names[control])
    matrix = encode(crowd.answers, extra_labels=known.unique())
    codes = matrix.encode_known(known)
    started = time.perf_counter()
    model = get_method(method)().fit_matrix(matrix, codes)
    seconds = time.perf_counter() - started
    scored = ~crowd.truth.index.isin(known.index)
    labels = model.labels_.reindex(crowd.truth.index[scored])
    accuracy = float((labels == crowd.truth[scored]).mean())
    return {"algorithm_s": round(seconds, 2), "algorithm_accuracy": round(accuracy, 4)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Fills, aggregates, prints the figures and, last, one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("CROWDLAB_SCALE_DB", DEFAULT_DB))
    parser.add_argument("--answers", type=int, default=3_000_000)
    parser.add_argument("--overlap", type=int, default=5)
    parser.add_argument("--workers", type=int, default=3000)
    parser.add_argument("--labels", type=int, default=4)
    parser.add_argument("--control", type=float, default=0.1, help="share of control tasks")
    parser.add_argument("--method", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--reuse", action="store_true", help="keep a database filled with the same arguments"
    )
    args = parser.parse_args(argv)
    if not sa.make_url(args.db).get_backend_name().startswith("postgresql"):
        raise SystemExit("--db must be a PostgreSQL URL")
    os.environ["CROWDLAB_DATABASE_URL"] = args.db
    os.environ["CROWDLAB_JOBS_IMMEDIATE"] = "1"
    share_cpu_priority(args.db)
    fixture = reuse(args.db, args) if args.reuse else None
    if fixture is None:
        reset_database(args.db)
        fixture = fill(args.db, args)
    print(
        f"filled {fixture['answers']:,} answers on {fixture['tasks']:,} tasks "
        f"({fixture['control_tasks']:,} control) by {args.workers:,} labelers in "
        f"{fixture['fill_s']} s (simulated in {fixture['simulate_s']} s)",
        file=sys.stderr,
        flush=True,
    )
    job = aggregate(fixture["pool_id"], fixture["requester_id"], args.method)
    alone = algorithm_alone(fixture, args.method)
    ratio = job["job_wall_s"] / max(alone["algorithm_s"], 1e-9)
    # the same ratio against the fit inside the job: on a shared machine the two fits of the
    # same answers can differ more than the whole overhead of loading and writing
    own = job["job_wall_s"] / max(job["fit_seconds"], 1e-9)
    result = {
        "benchmark": "aggregation.postgres_scale",
        "baseline": f"{args.method} fitted on the same answers already coded in memory",
        "method": args.method,
        **{k: v for k, v in fixture.items() if k not in ("crowd", "control", "task_names")},
        **job,
        **alone,
        "job_over_algorithm": round(ratio, 2),
        "job_over_its_fit": round(own, 2),
    }
    print(
        f"{args.method}: job {job['job_wall_s']} s (load {job['load_seconds']} s, fit "
        f"{job['fit_seconds']} s, write {job['write_seconds']} s) vs the algorithm alone "
        f"{alone['algorithm_s']} s: {ratio:.2f}x ({own:.2f}x the job's own fit)"
    )
    print(json.dumps(result, default=float))
    return result


if __name__ == "__main__":
    main()
