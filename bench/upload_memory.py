"""Peak memory of a large TSV import, whatever the file size.

For each size, a fresh subprocess migrates a SQLite database, seeds a requester and a
pool, then imports a generated task TSV through ``submit_upload`` (as the upload route
does: the file is a spooled file object, the import runs as a job). It prints peak RSS
(``resource.getrusage``) before and after the import and the growth, beside the file
size. Baseline (issue 13, before streaming): a 20 MB file took +2 GB, a 195 MB file
reached 6 GB and was killed.
Target: peak under 300 MB whatever the file size up to the 200 MB limit.

    python bench/upload_memory.py --mb 20 100
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(megabytes: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix="crowdlab-upload-mem-"))
    os.environ.update(
        {
            "CROWDLAB_DATA_DIR": str(work),
            "CROWDLAB_DATABASE_URL": f"sqlite:///{work / 'crowdlab.db'}",
            "CROWDLAB_JOBS_IMMEDIATE": "true",
            "CROWDLAB_JOBS_IN_PROCESS": "false",
            "CROWDLAB_SECRET_KEY": "bench",
        }
    )
    sys.path.insert(0, str(ROOT))
    from app.db.engine import new_session
    from app.db.migrate import upgrade
    from app.services.projects import uploads
    from app.settings import get_settings
    from tests.builders.pools import make_pool
    from tests.builders.users import make_requester

    upgrade(get_settings().resolved_database_url)
    session = new_session(write=False)
    requester = make_requester(session)
    pool = make_pool(session, requester)
    path = work / "tasks.tsv"
    rows = 0
    with open(path, "w") as out:
        out.write("INPUT:image\tGOLDEN:result\n")
        while out.tell() < megabytes * 1e6:
            out.write(f"https://img.example/bench/{rows:09d}.png\t{'cat' if rows % 20 else ''}\n")
            rows += 1
    # Warm up (imports, caches) on a small upload, so the figure is the import's own.
    small = make_pool(session, requester)
    uploads.submit_upload(
        session,
        requester=requester,
        pool_id=small.id,
        kind="tsv",
        files=[("s.tsv", b"INPUT:image\nhttps://img.example/warm.png\n")],
    )
    before = _peak_mb()
    started = time.perf_counter()
    with open(path, "rb") as file:
        outcome = uploads.submit_upload(
            session, requester=requester, pool_id=pool.id, kind="tsv", files=[("t.tsv", file)]
        )
    took = time.perf_counter() - started
    session.expire_all()
    from app.db.models import Job

    job = session.get(Job, outcome.job.id)
    return {
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "rows": rows,
        "status": job.status,
        "seconds": round(took, 1),
        "peak_rss_before_mb": round(before, 1),
        "peak_rss_after_mb": round(_peak_mb(), 1),
        "growth_mb": round(_peak_mb() - before, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, nargs="+", default=[20, 100])
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child)))
        return
    for size in args.mb:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(size)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
