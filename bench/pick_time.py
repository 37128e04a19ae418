"""Benchmark: the time to take a suite against the labeler's history and the pool's size.

Builds two PostgreSQL databases with ``bench/labeling_load.py``'s seed: a small pool
(``--small-tasks`` general and ``--small-controls`` control tasks) and a big one
(``--tasks`` general, ``--controls`` control tasks), filled by ``INSERT ... SELECT`` on the
server. In the big pool, labelers are given a history of ``--history`` accepted suites each
(9 general tasks and one control task a suite, as the seed's pool hands out), their general
tasks counted as taken.

For each labeler it times, ``--samples`` times, the choice of a suite alone (the pick
statement(s), in a transaction rolled back) and a whole take through the service
(``assign_next_suite``: context, pick, insert, budget check, commit), the suite then skipped
so that the next sample takes anew. Printed: a table of median milliseconds against the
history, and the ratio of the veteran's take in the big pool to a new labeler's take in the
small pool (issue 17's target: at most 1.5).

    python bench/pick_time.py [--tasks 1000000] [--controls 4000] [--history 0 100 1000 10000]

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.labeling_load import reset_database, seed  # noqa: E402

BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/"
GENERAL_PER_SUITE = 9  # the seed's pool: 9 general and 1 control task a suite


def fill_tasks(url: str, pool_id: int, *, tasks: int, controls: int) -> None:
    """``tasks`` general tasks (positions 0…) then ``controls`` control tasks, on the server."""
    insert = sa.text(
        "INSERT INTO task (pool_id, kind, image, input_values, known_answer, taken_count, "
        "submitted_count, position, created_at) "
        "SELECT :pool, k.kind, 'https://img.bench/' || k.kind || i || '.jpg', '{}', "
        "CASE WHEN k.kind = 'control' THEN (ARRAY['cat','dog','bird'])[i % 3 + 1] END, 0, 0, "
        ":first + i, now() FROM (SELECT CAST(:kind AS text) AS kind) k, "
        "generate_series(0, :n - 1) i"
    )
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for kind, first, n in (("general", 0, tasks), ("control", tasks, controls)):
            conn.execute(insert, {"pool": pool_id, "kind": kind, "first": first, "n": n})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()


def give_history(url: str, pool_id: int, labeler_id: int, suites: int, first_task: int) -> int:
    """``suites`` accepted suites for the labeler, general tasks from position ``first_task``
    on; the next free position."""
    if suites == 0:
        return first_task
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TEMP TABLE new_suite ON COMMIT DROP AS "
                "WITH made AS (INSERT INTO assignment (pool_id, labeler_id, status, reward_cents, "
                "created_at, expires_at, submitted_at) SELECT :pool, :labeler, 'accepted', 5, "
                "now() - interval '1 day', now(), now() - interval '1 day' "
                "FROM generate_series(1, :suites) RETURNING id) "
                "SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM made"
            ),
            {"pool": pool_id, "labeler": labeler_id, "suites": suites},
        )
        # the seed's general tasks were inserted in position order: id = first id + position
        conn.execute(
            sa.text(
                "INSERT INTO assignment_task (assignment_id, task_id, position, labeler_id) "
                "SELECT s.id, base.id0 + :first + s.k * :g + j, j, :labeler FROM new_suite s, "
                "(SELECT min(id) AS id0 FROM task WHERE pool_id = :pool AND kind = 'general') "
                "base, generate_series(0, :g - 1) j"
            ),
            {"pool": pool_id, "first": first_task, "g": GENERAL_PER_SUITE, "labeler": labeler_id},
        )
        conn.execute(  # one control task a suite, going round the pool's control tasks
            sa.text(
                "WITH c AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS r, "
                "count(*) OVER () AS n FROM task WHERE pool_id = :pool AND kind = 'control') "
                "INSERT INTO assignment_task (assignment_id, task_id, position, labeler_id) "
                "SELECT s.id, c.id, :g, :labeler FROM new_suite s JOIN c ON c.r = s.k % c.n"
            ),
            {"pool": pool_id, "g": GENERAL_PER_SUITE, "labeler": labeler_id},
        )
        conn.execute(
            sa.text(
                "UPDATE task SET taken_count = 1, submitted_count = 1 WHERE pool_id = :pool "
                "AND kind = 'general' AND position >= :first AND position < :last"
            ),
            {"pool": pool_id, "first": first_task, "last": first_task + suites * GENERAL_PER_SUITE},
        )
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE assignment, assignment_task, task")
    engine.dispose()
    return first_task + suites * GENERAL_PER_SUITE


def time_labeler(url: str, pool_id: int, labeler_id: int, samples: int) -> dict:
    """Median and p95 milliseconds of the pick alone and of a whole take."""
    from sqlmodel import Session

    from app.db.models import User
    from app.services.labeling import assignments
    from app.services.labeling.available import PoolTerms
    from app.services.labeling.sql import POOL_TERMS

    engine = sa.create_engine(url)
    pick_ms, take_ms = [], []
    with Session(engine) as session:
        labeler = session.get(User, labeler_id)
        terms_sql = sa.text(f"SELECT {', '.join(POOL_TERMS)} FROM pool WHERE id = :id")
        for i in range(samples + 2):  # the first two warm the caches and plans
            conn = session.connection()
            pool = PoolTerms(*conn.execute(terms_sql, {"id": pool_id}).one())
            started = time.perf_counter()
            picked = assignments.pick_tasks(conn, labeler_id=labeler_id, pool=pool, pg=True)
            elapsed = time.perf_counter() - started
            session.rollback()
            assert picked, "the pool ran out of tasks for the labeler"
            started = time.perf_counter()
            view = assignments.assign_next_suite(session, labeler=labeler, pool_id=pool_id)
            took = time.perf_counter() - started
            assignments.skip_assignment(session, labeler=labeler, assignment_id=view.assignment_id)
            if i >= 2:
                pick_ms.append(elapsed * 1000)
                take_ms.append(took * 1000)
    engine.dispose()

    def p95(values):
        return sorted(values)[int(0.95 * (len(values) - 1))]

    return {
        "pick_ms": round(statistics.median(pick_ms), 2),
        "pick_p95_ms": round(p95(pick_ms), 2),
        "take_ms": round(statistics.median(take_ms), 2),
        "take_p95_ms": round(p95(take_ms), 2),
    }


def build(name: str, *, tasks: int, controls: int, labelers: int) -> tuple[str, dict]:
    url = BASE + name
    reset_database(url)
    seeded = seed(
        url, labelers=labelers, tasks=tasks, controls=controls, overlap=3, insert_tasks=False
    )
    fill_tasks(url, seeded["pool_id"], tasks=tasks, controls=controls)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        ids = conn.execute(
            sa.text("SELECT id FROM user_account WHERE role = 'labeler' ORDER BY id")
        ).scalars()
        seeded["labeler_ids"] = list(ids)
    engine.dispose()
    return url, seeded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--controls", type=int, default=4000)
    parser.add_argument("--small-tasks", type=int, default=10_000)
    parser.add_argument("--small-controls", type=int, default=100)
    parser.add_argument("--history", type=int, nargs="+", default=[0, 100, 1000, 10000])
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    needed = sum(args.history) * GENERAL_PER_SUITE + (args.samples + 2) * len(args.history) * 9
    if needed > args.tasks:
        parser.error(f"--tasks must be at least {needed} for these histories")

    started = time.monotonic()
    small_url, small = build(
        "crowdlab_pick_small", tasks=args.small_tasks, controls=args.small_controls, labelers=1
    )
    big_url, big = build(
        "crowdlab_pick_big", tasks=args.tasks, controls=args.controls, labelers=len(args.history)
    )
    position = 0
    for labeler_id, history in zip(big["labeler_ids"], args.history, strict=True):
        position = give_history(big_url, big["pool_id"], labeler_id, history, position)
    print(f"built in {time.monotonic() - started:.0f} s")

    baseline = time_labeler(small_url, small["pool_id"], small["labeler_ids"][0], args.samples)
    print(
        f"small pool ({args.small_tasks} tasks, {args.small_controls} controls), new labeler: "
        f"pick {baseline['pick_ms']} ms, take {baseline['take_ms']} ms"
    )
    print(f"big pool ({args.tasks} tasks, {args.controls} controls):")
    print(f"{'history (suites)':>17} {'pick ms':>9} {'p95':>7} {'take ms':>9} {'p95':>7}")
    rows = []
    for labeler_id, history in zip(big["labeler_ids"], args.history, strict=True):
        row = {
            "history": history,
            **time_labeler(big_url, big["pool_id"], labeler_id, args.samples),
        }
        rows.append(row)
        print(
            f"{history:>17} {row['pick_ms']:>9} {row['pick_p95_ms']:>7} "
            f"{row['take_ms']:>9} {row['take_p95_ms']:>7}"
        )
    veteran = rows[-1]
    ratio = veteran["take_ms"] / baseline["take_ms"]
    print(
        f"take, veteran in the big pool / new labeler in the small pool: {ratio:.2f} (target ≤ 1.5)"
    )
    print(
        json.dumps(
            {
                "tasks": args.tasks,
                "controls": args.controls,
                "small": {"tasks": args.small_tasks, "controls": args.small_controls, **baseline},
                "by_history": rows,
                "take_ratio": round(ratio, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
