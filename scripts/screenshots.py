"""Take the README's screenshots: a fresh instance filled by the demo, driven by chromium.

    .venv/bin/python scripts/screenshots.py [--out docs] [--chromium /usr/bin/chromium]

Runs the demo in a temporary data directory, opens a second small pool so a labeler has
a suite to show, serves the app on a free port and saves 1280×800 PNGs (palette-reduced
to stay small) of the requester's pool page, the labeler's task page, the aggregation
list and the inference page.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fill():
    """Run the demo, then open a second pool so a labeler has a suite on screen."""
    from sqlmodel import select

    from app.db.engine import session_scope
    from app.db.migrate import upgrade
    from app.db.models import User
    from app.services.demo import scenario as demo
    from app.services.demo.data import digit_images
    from app.services.money import ledger
    from app.services.projects import pools, uploads

    upgrade()
    with session_scope() as session:
        result = demo.run_demo(session, progress=lambda f, m="": print(f"{f:4.0%} {m}"[:100]))
        requester = session.exec(select(User).where(User.email == result.requester_email)).one()
        pool = pools.create_pool(
            session,
            requester=requester,
            project_id=result.project_id,
            name="Digits, batch 2",
            overlap=3,
            reward_cents=3,
            general_per_suite=4,
            control_per_suite=0,
            use_quality_preset=True,
        )
        images = digit_images(size=32, per_class=25, offset=20)
        files = [
            (f"more-{label}-{n}.png", png)
            for label in "0123"
            for n, png in enumerate(images[label][:2])
        ]
        uploads.submit_upload(
            session, requester=requester, pool_id=pool.id, kind="images", files=files
        )
        ledger.top_up(session, user=requester, amount_cents=500)
        pools.launch_pool(session, requester=requester, pool_id=pool.id)
    return result


def _samples(result, labels: str = "368") -> list[tuple[str, bytes]]:
    """Held-out digits the published model gets right (the page shows a typical success)."""
    from app.db.engine import session_scope
    from app.db.models import TrainedModel
    from app.services.demo.data import digit_images
    from app.services.ml import inference

    images = digit_images(size=32, per_class=80, offset=50)
    chosen = []
    with session_scope(write=False) as session:
        model = session.get(TrainedModel, result.model_id)
        for label in labels:
            for png in images[label]:
                top = inference.predict_bytes(model, data=png, name="x.png", top_k=1)[0]
                if top[0] == label and top[1] > 0.6:
                    chosen.append((label, png))
                    break
    return chosen


def _shrink(png: bytes) -> bytes:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=128, dither=0)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _log_in(page, email: str, password: str) -> None:
    page.goto("/login")
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def _shoot(page, path: Path) -> None:
    path.write_bytes(_shrink(page.screenshot()))
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


def _take(url: str, out: Path, chromium: str, result) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        requester = browser.new_context(base_url=url, viewport=VIEWPORT).new_page()
        _log_in(requester, result.requester_email, result.password)
        requester.goto(f"/requester/pools/{result.pool_id}")
        requester.wait_for_selector("#pool-progress")
        _shoot(requester, out / "requester-pool.png")
        requester.goto(f"/requester/pools/{result.pool_id}/aggregations")
        _shoot(requester, out / "aggregations.png")

        with tempfile.TemporaryDirectory() as folder:
            paths = []
            for label, png in _samples(result):
                path = Path(folder) / f"digit-{label}.png"
                path.write_bytes(png)
                paths.append(str(path))
            requester.goto("/requester/inference")
            requester.set_input_files("#f-files", paths)
            requester.click("#predict")
            requester.wait_for_selector("#results")
        _shoot(requester, out / "inference.png")

        careful = next(p for p in result.labelers if p.kind == "careful")
        labeler = browser.new_context(base_url=url, viewport=VIEWPORT).new_page()
        _log_in(labeler, careful.email, result.password)
        labeler.goto("/labeler")
        labeler.click("button:has-text('Start labeling')")
        labeler.wait_for_selector("#task-0:focus")
        labeler.keyboard.press("1")
        labeler.wait_for_selector("#task-1:focus")
        _shoot(labeler, out / "labeler-suite.png")
        browser.close()


def main(argv: list[str] | None = None) -> int:
    """Fill a temporary instance with the demo and write the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--keep", action="store_true", help="keep the demo instance's data")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="crowdlab-screens-"))
    os.environ.update(
        CROWDLAB_DATA_DIR=str(data_dir),
        CROWDLAB_JOBS_IMMEDIATE="true",
        CROWDLAB_JOBS_IN_PROCESS="false",
    )
    os.environ.pop("CROWDLAB_DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    import uvicorn

    from app.main import create_app

    result = _fill()
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(start_jobs=False), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        _take(f"http://127.0.0.1:{port}", out, args.chromium, result)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    if args.keep:
        print(f"(demo data kept in {data_dir})")
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
