"""Aggregating a checkbox pool: one binary model per option, each option's confidence in the
labels, the API and the TSV (``OUTPUT:result`` a JSON list, ``CONFIDENCE:<value>`` each)."""

from __future__ import annotations

import csv
import io
import json

from sqlmodel import select

from aggregation.multilabel import simulate_multilabel_crowd
from app.db.models import AggregatedLabel
from app.services.aggregations import runs as svc
from tests.builders.answers import add_answer_table
from tests.builders.pools import add_tasks, make_pool, make_project
from tests.builders.users import make_labeler

OPTIONS = ["cat", "dog", "bird"]


def _crowd_pool(session, requester, *, spammers=0.2, seed=5):
    answers, truth = simulate_multilabel_crowd(
        120, 15, OPTIONS, overlap=5, accuracy=(0.75, 0.95), spammers=spammers, seed=seed
    )
    project = make_project(session, requester, options=OPTIONS, answer_type="multiple",
                           allow_none=True)  # fmt: skip
    pool = make_pool(session, requester, project)
    created = add_tasks(session, pool, general=len(truth))
    tasks = dict(zip(truth.index, created, strict=True))
    labelers = {f"w{i}": make_labeler(session) for i in range(15)}
    add_answer_table(session, pool, tasks, labelers, list(answers.itertuples(index=False)))
    return pool, tasks, truth


def test_checkbox_pool_aggregates_per_option_with_its_own_confidence(
    session, requester, requester_client
):
    pool, tasks, truth = _crowd_pool(session, requester)
    run = svc.start_aggregation(session, requester=requester, pool_id=pool.id, method="ds")
    session.expire_all()
    run = svc.get_run(session, requester=requester, run_id=run.id)
    assert run.status == "succeeded", run.error
    rows = {
        r.task_id: r
        for r in session.exec(select(AggregatedLabel).where(AggregatedLabel.run_id == run.id))
    }
    per_option_right = dict.fromkeys(OPTIONS, 0)
    for key, task in tasks.items():
        row = rows[task.id]
        got = json.loads(row.value)
        assert got == [o for o in OPTIONS if o in got]  # option order
        assert set(row.option_confidence) == set(OPTIONS)
        for option in OPTIONS:
            p = row.option_confidence[option]
            assert (p >= 0.5) == (option in got)
            per_option_right[option] += (option in got) == (option in truth[key])
    assert min(per_option_right.values()) >= 0.9 * len(tasks), per_option_right
    # the TSV: OUTPUT:result a JSON list, then one CONFIDENCE column per option
    table = list(csv.reader(io.StringIO(svc.build_results_tsv(session, run=run)), delimiter="\t"))
    assert table[0] == ["INPUT:image", "OUTPUT:result", "CONFIDENCE:cat", "CONFIDENCE:dog",
                        "CONFIDENCE:bird"]  # fmt: skip
    first = rows[next(iter(tasks.values())).id]
    line = next(r for r in table[1:] if r[0] == next(iter(tasks.values())).image)
    assert json.loads(line[1]) == json.loads(first.value)
    assert [float(x) for x in line[2:]] == [round(first.option_confidence[o], 4) for o in OPTIONS]
    workers = svc.list_worker_quality(session, run=run)
    assert workers and all(0 <= w.accuracy <= 1 and set(w.per_option) == set(OPTIONS)
                           for w in workers)  # fmt: skip
    page = requester_client.get(f"/requester/pools/{pool.id}/aggregations/{run.id}")
    assert page.status_code == 200 and "per-option" in page.text


def test_aggregated_solutions_api_returns_lists_and_option_confidence(
    session, requester, requester_api
):
    pool, tasks, _truth = _crowd_pool(session, requester, spammers=0.0)
    started = requester_api.post(
        "/api/v1/aggregated-solutions/aggregate-by-pool",
        json={"pool_id": str(pool.id), "type": "DAWID_SKENE", "fields": [{"name": "result"}]},
    )
    assert started.status_code in (200, 202), started.text
    operation = started.json()["id"]
    page = requester_api.get(f"/api/v1/aggregated-solutions/{operation}").json()
    item = page["items"][0]
    assert isinstance(item["output_values"]["result"], list)
    assert set(item["option_confidence"]) == set(OPTIONS)
    results = requester_api.get(f"/api/v1/pools/{pool.id}/aggregations").json()
    assert results


def test_collection_from_a_checkbox_run_keeps_images_decided_on_every_option(
    session, requester, requester_client
):
    from app.db.models import CollectionItem
    from app.services.ml import multilabel

    pool, tasks, truth = _crowd_pool(session, requester, spammers=0.0)
    run = svc.start_aggregation(session, requester=requester, pool_id=pool.id, method="ds")
    # the tasks need stored images to enter a collection
    from app.services.media import store as media
    from tests.multilabel.builders import colour_png

    for i, task in enumerate(tasks.values()):
        stored = media.store_image(session, owner=requester, data=colour_png(["red"], i),
                                   name=f"{i}.png")  # fmt: skip
        task.media_id = stored.id
        session.add(task)
    session.commit()
    labels = {
        r.task_id: r
        for r in session.exec(select(AggregatedLabel).where(AggregatedLabel.run_id == run.id))
    }
    decided = [
        t for t in tasks.values()
        if all(p >= 0.9 or p <= 0.1 for p in labels[t.id].option_confidence.values())
    ]  # fmt: skip
    preview = requester_client.get(
        f"/requester/collections/preview?run_id={run.id}&min_confidence=0.9"
    )
    assert preview.status_code == 200 and "cat" in preview.text
    page = requester_client.get("/requester/collections/from-aggregation")
    import re

    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    created = requester_client.post(
        "/requester/collections/from-aggregation",
        data={
            "csrf_token": csrf,
            "run_id": str(run.id),
            "name": "Crowd tags",
            "min_confidence": "0.9",
            "val_fraction": "0.2",
            "seed": "0",
        },  # fmt: skip
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    collection = multilabel.get_collection_named(session, requester=requester, name="Crowd tags")
    assert collection.classification_type == "multilabel" and collection.classes == OPTIONS
    items = session.query(CollectionItem).filter_by(collection_id=collection.id).all()
    assert len(items) == len(decided) < len(tasks)
    by_task = {item.source_task_id: item for item in items}
    for task in decided:
        assert by_task[task.id].labels == sorted(json.loads(labels[task.id].value))
    detail = requester_client.get(created.headers["location"])
    assert detail.status_code == 200
