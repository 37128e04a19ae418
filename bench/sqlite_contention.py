"""SQLite under contention: a 20 MB TSV upload while 50 clients use the site.

Starts ``crowdlab serve`` on a fresh SQLite database on a free 127.0.0.1 port (jobs run
in the server's own worker process, as by default), seeds a requester, an open pool and labelers
(``bench/labeling_load.py``'s seed), then for ``--duration`` seconds runs at once:

* the requester's upload of a ``--mb`` MB task TSV into the open pool (API, a job);
* ``--clients`` clients: labelers taking and submitting suites (API), requesters reading
  console pages and media files, labelers logging in and reading their home page.

Prints p50/p95/p99 latency per kind of request and overall, the count of 5xx answers
and of "database is locked" (answers and server log), and how the upload ended. The
target (issue 13): p99 < 1 s and no "database is locked".

    python bench/sqlite_contention.py --mb 20 --clients 50 --duration 60
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import aiohttp
import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.labeling_load import free_port, reset_database, seed  # noqa: E402

PASSWORD = "bench password 1"
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def requester_token(url: str) -> str:
    from app.db.models import ApiToken, User
    from app.db.types import utcnow
    from app.security import hash_token

    token = secrets.token_urlsafe(24)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        uid = conn.execute(
            sa.select(User.__table__.c.id).where(User.__table__.c.role == "requester")
        ).scalar_one()
        conn.execute(
            sa.insert(ApiToken.__table__).values(
                user_id=uid,
                name="bench",
                token_hash=hash_token(token),
                prefix=token[:10],
                created_at=utcnow(),
            )
        )
    engine.dispose()
    return token


def make_tsv(megabytes: float) -> bytes:
    out = io.StringIO()
    out.write("INPUT:image\tGOLDEN:result\n")
    i = 0
    while out.tell() < megabytes * 1e6:
        out.write(f"https://img.example/bench/{i:09d}.png\t{'cat' if i % 20 == 0 else ''}\n")
        i += 1
    return out.getvalue().encode()


def png(i: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (i * 30 % 255, 80, 160)).save(buffer, "PNG")
    return buffer.getvalue()


class Stats:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.status: dict[int, int] = defaultdict(int)
        self.locked = 0
        self.errors: dict[str, int] = defaultdict(int)

    async def timed(self, kind: str, call) -> tuple[int, str]:
        started = time.perf_counter()
        try:
            async with call() as response:
                body = (await response.read()).decode("utf-8", "replace")
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.errors[f"{kind} {type(exc).__name__}"] += 1
            self.latency[kind].append(time.perf_counter() - started)
            return 0, ""
        self.latency[kind].append(time.perf_counter() - started)
        self.status[status] += 1
        if "database is locked" in body:
            self.locked += 1
        if status >= 500:
            self.errors[f"{kind} {status}"] += 1
        return status, body


def _jar() -> aiohttp.CookieJar:
    return aiohttp.CookieJar(unsafe=True)  # the server is 127.0.0.1, an IP address


async def web_login(session: aiohttp.ClientSession, stats: Stats, email: str) -> str | None:
    status, body = await stats.timed("GET /login", lambda: session.get("/login"))
    match = CSRF.search(body)
    if not match:
        return None
    form = {"email": email, "password": PASSWORD, "csrf_token": match.group(1)}
    status, _ = await stats.timed(
        "POST /login", lambda: session.post("/login", data=form, allow_redirects=False)
    )
    return match.group(1) if status == 303 else None


async def labeler_api(base, token, pool_id, stats, deadline) -> None:
    headers = {"Authorization": f"OAuth {token}"}
    async with aiohttp.ClientSession(base, headers=headers, timeout=TIMEOUT) as session:
        while time.monotonic() < deadline:
            status, body = await stats.timed(
                "take (API)", lambda: session.post(f"/api/v1/labeler/pools/{pool_id}/suites")
            )
            if status != 200:
                await asyncio.sleep(0.5)
                continue
            suite = json.loads(body)
            answers = {str(t["position"]): "cat" for t in suite["tasks"]}
            await asyncio.sleep(0.2)  # a labeler looks at the images
            await stats.timed(
                "submit (API)",
                lambda s=suite, a=answers: session.post(
                    f"/api/v1/labeler/assignments/{s['id']}/submit", json={"answers": a}
                ),
            )


async def requester_pages(base, media_urls, pool_id, stats, deadline) -> None:
    async with aiohttp.ClientSession(base, timeout=TIMEOUT, cookie_jar=_jar()) as session:
        await web_login(session, stats, "requester@bench.local")
        while time.monotonic() < deadline:
            status, _ = await stats.timed(
                "GET /requester", lambda: session.get("/requester", allow_redirects=False)
            )
            if status != 200:
                stats.errors[f"GET /requester {status}"] += 1
            await stats.timed("GET pool page", lambda: session.get(f"/requester/pools/{pool_id}"))
            for url in media_urls[:4]:
                await stats.timed("GET /media", lambda u=url: session.get(u))
            await asyncio.sleep(0.3)


async def labeler_logins(base, index, stats, deadline) -> None:
    while time.monotonic() < deadline:
        async with aiohttp.ClientSession(base, timeout=TIMEOUT, cookie_jar=_jar()) as session:
            if await web_login(session, stats, f"labeler{index}@bench.local"):
                await stats.timed("GET /labeler", lambda: session.get("/labeler"))
        await asyncio.sleep(0.5)


async def upload(base, token, pool_id, data: bytes, report: dict) -> None:
    headers = {"Authorization": f"OAuth {token}"}
    async with aiohttp.ClientSession(base, headers=headers, timeout=TIMEOUT_UPLOAD) as session:
        form = aiohttp.FormData()
        form.add_field("kind", "tsv")
        form.add_field(
            "files", data, filename="bench.tsv", content_type="text/tab-separated-values"
        )
        started = time.perf_counter()
        async with session.post(f"/api/v1/pools/{pool_id}/uploads", data=form) as response:
            body = await response.json()
            report["submit_s"] = round(time.perf_counter() - started, 2)
            report["submit_status"] = response.status
        while body.get("status") in ("PENDING", "RUNNING"):
            await asyncio.sleep(1)
            async with session.get(f"/api/v1/operations/{body['id']}") as response:
                body = await response.json()
        report["status"] = body.get("status")
        report["details"] = body.get("details")
        report["total_s"] = round(time.perf_counter() - started, 2)


TIMEOUT = aiohttp.ClientTimeout(total=60)
TIMEOUT_UPLOAD = aiohttp.ClientTimeout(total=600)


async def drive(base, seeded, token, media_urls, tsv, args) -> tuple[Stats, dict]:
    stats, report = Stats(), {}
    deadline = time.monotonic() + args.duration
    pool_id = seeded["pool_id"]
    clients = []
    for i in range(args.clients):
        if i % 5 in (0, 1):
            clients.append(labeler_api(base, seeded["tokens"][i], pool_id, stats, deadline))
        elif i % 5 in (2, 3):
            clients.append(requester_pages(base, media_urls, pool_id, stats, deadline))
        else:
            clients.append(labeler_logins(base, i, stats, deadline))
    uploader = asyncio.create_task(upload(base, token, pool_id, tsv, report))
    await asyncio.gather(*clients)
    await uploader
    return stats, report


def digits_zip() -> bytes:
    """scikit-learn's bundled handwritten digits as a ZIP of class folders."""
    import zipfile

    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i, (pixels, label) in enumerate(
            zip(digits.images[:600], digits.target[:600], strict=True)
        ):
            image = Image.fromarray((pixels * 16).clip(0, 255).astype("uint8")).resize((32, 32))
            out = io.BytesIO()
            image.convert("RGB").save(out, format="PNG")
            archive.writestr(f"digits/{label}/{i}.png", out.getvalue())
    return buffer.getvalue()


def start_training(base: str, headers: dict) -> int:
    """Import the digits as a collection and start training on it; the model's id."""
    created = httpx.post(
        f"{base}/api/v1/collections",
        data={"name": "bench digits"},
        files={"file": ("digits.zip", digits_zip(), "application/zip")},
        headers=headers,
        timeout=120,
    )
    assert created.status_code == 201, created.text
    collection = created.json()
    for _ in range(240):  # a big archive imports as a job
        if collection["status"] != "importing":
            break
        time.sleep(0.5)
        collection = httpx.get(
            f"{base}/api/v1/collections/{collection['id']}", headers=headers, timeout=30
        ).json()
    started = httpx.post(
        f"{base}/api/v1/models",
        json={"collection_id": collection["id"], "arch": "resnet10t", "epochs": 30,
              "image_size": 32, "batch_size": 32},
        headers=headers,
        timeout=30,
    )  # fmt: skip
    assert started.status_code == 202, (started.text, collection)
    return started.json()["id"]


def percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {"n": len(values), "p50": q[49], "p95": q[94], "p99": q[98], "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument(
        "--train", action="store_true", help="also train a small model on digits meanwhile"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="crowdlab-contention-"))
    url = f"sqlite:///{work / 'crowdlab.db'}"
    os.environ["CROWDLAB_DATA_DIR"] = str(work)
    reset_database(url)
    seeded = seed(url, labelers=args.clients, tasks=5000, controls=0, overlap=3)
    token = requester_token(url)
    env = {
        **os.environ,
        "CROWDLAB_DATA_DIR": str(work),
        "CROWDLAB_DATABASE_URL": url,
        "CROWDLAB_SECRET_KEY": "bench-secret",
        "CROWDLAB_JOBS_IN_PROCESS": "true",
        "CROWDLAB_ARGON2_TIME_COST": "1",
        "CROWDLAB_ARGON2_MEMORY_COST": "8192",
        # the TSV names made-up image URLs: checking half a million of them is another bench
        "CROWDLAB_CHECK_IMAGE_URLS": "false",
        "PYTHONPATH": str(ROOT),
    }
    port = free_port()
    log = open(work / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-c", "from app.cli import main; main()", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{base}/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        headers = {"Authorization": f"OAuth {token}"}
        files = [("files", (f"m{i}.png", png(i), "image/png")) for i in range(4)]
        created = httpx.post(
            f"{base}/api/v1/pools/{seeded['pool_id']}/uploads",
            data={"kind": "images"},
            files=files,
            headers=headers,
            timeout=30,
        )
        assert created.status_code == 201, created.text
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            media_urls = [
                row[0]
                for row in conn.exec_driver_sql(
                    "SELECT image FROM task WHERE image LIKE '/media/%' LIMIT 4"
                )
            ]
        engine.dispose()
        training = start_training(base, headers) if args.train else None
        tsv = make_tsv(args.mb)
        started = time.monotonic()
        stats, report = asyncio.run(drive(base, seeded, token, media_urls, tsv, args))
        elapsed = time.monotonic() - started
        if training is not None:
            model = httpx.get(f"{base}/api/v1/models/{training}", headers=headers, timeout=30)
            training = {k: model.json().get(k) for k in ("status", "progress", "message")}
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    server_log = (work / "server.log").read_text()
    everything = [v for values in stats.latency.values() for v in values]
    figures = {
        "tsv_mb": round(len(tsv) / 1e6, 1),
        "tsv_rows": tsv.count(b"\n") - 1,
        "clients": args.clients,
        "elapsed_s": round(elapsed, 1),
        "requests": len(everything),
        "overall": {k: round(v, 3) for k, v in percentiles(everything).items()},
        "by_kind": {
            kind: {k: round(v, 3) for k, v in percentiles(values).items()}
            for kind, values in sorted(stats.latency.items())
        },
        "status": dict(sorted(stats.status.items())),
        "5xx": sum(n for s, n in stats.status.items() if s >= 500),
        "database_locked_in_answers": stats.locked,
        "database_locked_in_server_log": server_log.count("database is locked"),
        "errors": dict(stats.errors),
        "upload": report,
        "training": training,
    }
    for kind, p in figures["by_kind"].items():
        print(f"{kind:16} n={p['n']:5}  p50={p['p50']:.3f}  p95={p['p95']:.3f}  p99={p['p99']:.3f}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
