"""Model in the loop: what dynamic overlap (and a model) save against fixed overlap.

Simulated labelers label scikit-learn's digits through the real assignment engine (take a
suite, submit it: ``app.services.labeling``) on a database, with one control task per
suite. Each labeler's confusion matrix comes from a real crowd worker: the public
datasets of ``bench/truth_data.py`` give every worker with enough gold-labelled answers a
per-class accuracy; a simulated labeler takes one real worker's per-class accuracies
(cycled onto the ten digits) and spreads its errors over the other digits.

Three runs, same crowd, same seed, same tasks:

- ``fixed``: overlap 3, labels by Dawid-Skene (control answers as known labels);
- ``dynamic``: dynamic overlap from 1 to 5 until ``--min-confidence``; labels are the
  engine's own weighted vote;
- ``dynamic_model``: the same, with the requester's own model answering first through
  Toloka's ``baseline_solutions``: the tasks go in rounds, and before each round a
  logistic regression is trained on the labels the crowd made confident so far; its
  predicted probability is the preliminary answer's ``confidence_weight``.

Printed: answers bought, label accuracy against the truth, money spent and per correct
label (suites × price + fee, from the ledger), and the model's accuracy on held-out
digits. The last line is JSON.

    CROWDLAB_TRUTH_DATA=/path/to/truth-inference-at-scale python bench/active_loop.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DIGITS = [str(d) for d in range(10)]
MIN_GOLD_ANSWERS = 20


# --------------------------------------------------------------------------- the crowd


def real_worker_profiles(root: str | None) -> list[np.ndarray]:
    """Per-class accuracies of every real worker with enough gold-labelled answers."""
    from bench.truth_data import default_root, load_datasets

    root = root or default_root()
    if not root:
        raise SystemExit("Point CROWDLAB_TRUTH_DATA (or --data) at the truth-inference data.")
    profiles = []
    for dataset in load_datasets(root):
        answers = dataset.answers.join(dataset.truth, on="task")
        answers["right"] = answers["label"] == answers["truth"]
        for _, rows in answers.groupby("worker"):
            if len(rows) < MIN_GOLD_ANSWERS:
                continue
            per_class = rows.groupby("truth")["right"].agg(["mean", "size"])
            per_class = per_class[per_class["size"] >= 3]["mean"].to_numpy()
            if len(per_class):
                profiles.append(per_class)
    if not profiles:
        raise SystemExit(f"{root}: no worker with {MIN_GOLD_ANSWERS} gold-labelled answers.")
    return profiles


def simulated_crowd(profiles: list[np.ndarray], n: int, rng) -> list[np.ndarray]:
    """``n`` 10×10 confusion matrices (row: true digit, column: answer)."""
    crowd = []
    for index in rng.choice(len(profiles), size=n, replace=len(profiles) < n):
        per_class = profiles[index]
        diagonal = np.resize(rng.permutation(per_class), 10).clip(0.0, 1.0)
        matrix = np.tile(((1 - diagonal) / 9)[:, None], (1, 10))
        np.fill_diagonal(matrix, diagonal)
        crowd.append(matrix)
    return crowd


# --------------------------------------------------------------------------- a run


def fresh_database(folder: Path, name: str) -> None:
    os.environ["CROWDLAB_DATA_DIR"] = str(folder / name)
    os.environ["CROWDLAB_DATABASE_URL"] = f"sqlite:///{folder / name / 'crowdlab.db'}"
    os.environ["CROWDLAB_JOBS_IMMEDIATE"] = "true"
    (folder / name).mkdir(parents=True, exist_ok=True)
    from app.db.engine import engine_for
    from app.db.migrate import upgrade
    from app.settings import get_settings

    get_settings.cache_clear()
    engine_for.cache_clear()
    upgrade()


def run_variant(
    name: str,
    *,
    crowd: list[np.ndarray],
    general: list[tuple[np.ndarray, int]],
    controls: list[int],
    pool_settings: dict,
    folder: Path,
    seed: int,
    model_rounds: int = 0,
    test_set: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict:
    """Label ``general`` (pixels, truth) with the crowd through the engine; the figures."""
    from sqlmodel import select

    from app.db.engine import new_session
    from app.db.models import Answer, Role, Task, TaskKind
    from app.services.accounts.users import create_user
    from app.services.money import ledger
    from app.services.projects import pools, projects, uploads
    from app.services.projects.upload_formats import TaskInput

    fresh_database(folder, name)
    random.seed(seed)  # the engine shuffles suites (SQLite's random() picks controls)
    rng = np.random.default_rng(seed)
    settled = pool_settings.get("min_confidence") or 0.9  # the labels a model learns from
    session = new_session(write=True)
    requester = create_user(
        session, role=Role.REQUESTER, email="bench@example.com", password="bench password 1"
    )
    project = projects.create_project(
        session, requester=requester, name="Digits", question="Which digit is it?",
        options=[projects.OptionInput(label=d, value=d) for d in DIGITS],
    )  # fmt: skip
    pool = pools.create_pool(
        session, requester=requester, project_id=project.id, name=name,
        reward_cents=10, general_per_suite=9, control_per_suite=1, **pool_settings,
    )  # fmt: skip
    url = "https://digits.example/{}.png"
    uploads.add_tasks(
        session, requester=requester, pool_id=pool.id,
        items=[TaskInput(image=url.format(f"c{i}"), known_answer=str(t))
               for i, t in enumerate(controls)],
    )  # fmt: skip
    truth: dict[int, int] = {}
    pixels_of: dict[int, np.ndarray] = {}
    rounds = np.array_split(np.arange(len(general)), max(model_rounds, 1))
    labelers = [
        create_user(
            session,
            role=Role.LABELER,
            email=f"l{i}@example.com",
            password="bench password 1",
            languages=["EN"],
        )  # fmt: skip
        for i in range(len(crowd))
    ]
    ledger.top_up(session, user=requester, amount_cents=10_000_000)
    model = None
    model_accuracy = None
    for number, indexes in enumerate(rounds):
        items = []
        for i in indexes:
            pixels, label = general[i]
            baseline = None
            if model is not None:
                probabilities = model.predict_proba(pixels[None, :])[0]
                best = int(np.argmax(probabilities))
                baseline = [
                    {
                        "output_values": {"result": str(model.classes_[best])},
                        "confidence_weight": float(probabilities[best]),
                    }
                ]
            items.append(TaskInput(image=url.format(f"g{i}"), baseline_solutions=baseline))
        created = uploads.add_tasks(session, requester=requester, pool_id=pool.id, items=items)
        for task, i in zip(created, indexes, strict=True):
            truth[task.id] = general[i][1]
            pixels_of[task.id] = general[i][0]
        pool = session.get(type(pool), pool.id)
        if pool.status != "open":  # a draft, or closed when the last round was done
            pools.launch_pool(session, requester=requester, pool_id=pool.id)
        truth_of = _truth_lookup(session, truth)
        label_until_done(session, pool.id, labelers, crowd, rng, truth_of=truth_of)
        if model_rounds and number + 1 < len(rounds):
            model = train_model(session, pool.id, pixels_of, min_confidence=settled)
    session.expire_all()
    tasks = session.exec(
        select(Task).where(Task.pool_id == pool.id, Task.kind == TaskKind.GENERAL)
    ).all()
    answers = sum(t.submitted_count for t in tasks)
    if pool_settings.get("max_overlap"):
        labels = {t.id: _engine_label(t, DIGITS) for t in tasks}
    else:
        labels = dawid_skene_labels(session, pool.id)
    correct = sum(str(truth[tid]) == labels.get(tid) for tid in truth)
    pool = session.get(type(pool), pool.id)
    cost = ledger.get_pool_spent(session, pool=pool)
    if model_rounds and test_set is not None:
        model = train_model(session, pool.id, pixels_of, min_confidence=settled)
        model_accuracy = float((model.predict(test_set[0]) == test_set[1].astype(str)).mean())
    n_answers = len(session.exec(select(Answer.id)).all())
    session.close()
    result = {
        "answers": int(answers),
        "answers_with_controls": int(n_answers),
        "label_accuracy": round(correct / len(truth), 4),
        "cost": round(cost / 100, 2),
        "cost_per_correct_label": round(cost / 100 / max(correct, 1), 4),
    }
    if model_accuracy is not None:
        result["model_test_accuracy"] = round(model_accuracy, 4)
    return result


def _truth_lookup(session, truth: dict[int, int]):
    """Task id → true digit, for general and control tasks."""
    from sqlmodel import select

    from app.db.models import Task, TaskKind

    known = dict(
        session.exec(select(Task.id, Task.known_answer).where(Task.kind == TaskKind.CONTROL)).all()
    )
    return {**truth, **{tid: int(answer) for tid, answer in known.items()}}


def _engine_label(task, values: list[str]) -> str:
    """The label the engine's weighted vote (with the preliminary answers) gives."""
    from aggregation.incremental import combined, posterior, preliminary_scores

    prior = preliminary_scores(task.baseline_solutions, None, model=None, values=values)
    scores = posterior(combined(task.votes, prior), values)
    return max(values, key=lambda v: scores[v])


def label_until_done(session, pool_id: int, labelers, crowd, rng, *, truth_of) -> None:
    """Random labelers take and submit suites until nobody gets one."""
    from app.errors import CrowdlabError
    from app.services.labeling.assignments import assign_next_suite, submit_assignment

    idle = set()
    while len(idle) < len(labelers):
        k = int(rng.integers(len(labelers)))
        if k in idle:
            continue
        try:
            view = assign_next_suite(session, labeler=labelers[k], pool_id=pool_id)
        except CrowdlabError:
            idle.add(k)
            continue
        answers = {}
        for task in view.tasks:
            row = crowd[k][truth_of[task.task_id]]
            answers[task.position] = DIGITS[int(rng.choice(10, p=row / row.sum()))]
        submit_assignment(
            session, labeler=labelers[k], assignment_id=view.assignment_id,
            answers=answers, by_position=True,
        )  # fmt: skip
        idle.clear()  # a submit may have given a task another slot


def dawid_skene_labels(session, pool_id: int) -> dict[int, str]:
    """Dawid-Skene over the pool's answers, control answers as known labels."""
    from sqlmodel import select

    from aggregation.dawid_skene import DawidSkene
    from app.db.models import Answer, Task, TaskKind

    rows = session.exec(
        select(Answer.task_id, Answer.labeler_id, Answer.value, Task.kind, Task.known_answer)
        .join(Task, Task.id == Answer.task_id)
        .where(Answer.pool_id == pool_id)
    ).all()
    data = pd.DataFrame(
        [(str(t), str(w), v) for t, w, v, *_ in rows], columns=["task", "worker", "label"]
    )
    known = pd.Series({str(t): k for t, _, _, kind, k in rows if kind == TaskKind.CONTROL})
    known = known[~known.index.duplicated()]
    labels = DawidSkene().fit_predict(data, known=known)
    return {int(t): str(v) for t, v in labels.items()}


def train_model(session, pool_id: int, pixels_of: dict, *, min_confidence: float):
    """A logistic regression on the tasks the crowd made confident so far."""
    from sklearn.linear_model import LogisticRegression
    from sqlmodel import select

    from app.db.models import Task, TaskKind

    session.expire_all()
    tasks = session.exec(
        select(Task).where(
            Task.pool_id == pool_id, Task.kind == TaskKind.GENERAL, Task.votes.is_not(None)
        )
    ).all()
    xs, ys = [], []
    for task in tasks:
        if (task.confidence or 0) >= min_confidence:
            xs.append(pixels_of[task.id])
            ys.append(_engine_label(task, DIGITS))
    model = LogisticRegression(max_iter=2000, C=0.5)
    model.fit(np.array(xs), np.array(ys))
    return model


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="the truth-inference data (or env)")
    parser.add_argument("--tasks", type=int, default=450)
    parser.add_argument("--controls", type=int, default=40)
    parser.add_argument("--labelers", type=int, default=40)
    parser.add_argument("--min-confidence", type=float, default=0.74)
    parser.add_argument("--rounds", type=int, default=8, help="model rounds (retrain between)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from sklearn.datasets import load_digits

    rng = np.random.default_rng(args.seed)
    digits = load_digits()
    order = rng.permutation(len(digits.target))
    pixels = digits.data / 16.0
    use = order[: args.tasks]
    control_idx = order[args.tasks : args.tasks + args.controls]
    test = order[args.tasks + args.controls :]
    general = [(pixels[i], int(digits.target[i])) for i in use]
    controls = [int(digits.target[i]) for i in control_idx]
    profiles = real_worker_profiles(args.data)
    crowd = simulated_crowd(profiles, args.labelers, rng)
    mean_accuracy = float(np.mean([np.diag(m).mean() for m in crowd]))
    print(
        f"{len(profiles)} real workers with ≥{MIN_GOLD_ANSWERS} gold answers; "
        f"{args.labelers} simulated labelers, mean accuracy {mean_accuracy:.3f}; "
        f"{args.tasks} digits, {args.controls} control tasks, {len(test)} held out"
    )
    dynamic = {"overlap": 1, "max_overlap": 5, "min_confidence": args.min_confidence}
    variants = {
        "fixed": {"pool_settings": {"overlap": 3}},
        "dynamic": {"pool_settings": dynamic},
        "dynamic_model": {
            "pool_settings": dynamic,
            "model_rounds": args.rounds,
            "test_set": (pixels[test], digits.target[test]),
        },
    }
    results = {}
    with tempfile.TemporaryDirectory(prefix="crowdlab-active-loop-") as tmp:
        for name, options in variants.items():
            started = time.perf_counter()
            results[name] = run_variant(
                name, crowd=crowd, general=general, controls=controls,
                folder=Path(tmp), seed=args.seed, **options,
            )  # fmt: skip
            figures = results[name]
            extra = (
                f", model test accuracy {figures['model_test_accuracy']:.3f}"
                if "model_test_accuracy" in figures
                else ""
            )
            print(
                f"{name:>14}: {figures['answers']:5d} answers "
                f"({figures['answers'] / results['fixed']['answers']:.0%} of fixed), "
                f"label accuracy {figures['label_accuracy']:.3f}, ${figures['cost']:.2f} spent, "
                f"${figures['cost_per_correct_label']:.4f} per correct label{extra} "
                f"[{time.perf_counter() - started:.0f} s]"
            )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
