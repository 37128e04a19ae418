"""toloka-kit's webhook subscriptions: events are POSTed for real, signed, and retried."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

with warnings.catch_warnings():  # toloka-kit imports pkg_resources
    warnings.simplefilter("ignore")
    import toloka.client as toloka
    from toloka.client import exceptions

from sqlmodel import select

from app.db.engine import new_session
from app.db.models import Task, WebhookDelivery
from app.services.labeling import assignments, submissions
from tests.builders.pools import add_tasks, make_pool, open_pool
from tests.builders.users import make_labeler


class Receiver:
    """A local HTTP receiver that fails the first ``fail_first`` requests."""

    def __init__(self, fail_first: int = 0) -> None:
        self.requests: list[tuple[dict, bytes]] = []
        self.fail_first = fail_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), body))
                status = 500 if len(outer.requests) <= outer.fail_first else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver(monkeypatch):
    from app.settings import get_settings

    monkeypatch.setenv("CROWDLAB_ALLOW_PRIVATE_WEBHOOK_URLS", "true")
    monkeypatch.setenv("CROWDLAB_WEBHOOK_BACKOFF_SECONDS", "0")
    get_settings.cache_clear()
    found = Receiver(fail_first=1)
    yield found
    found.close()


def _pid(number: int) -> str:
    return f"{number:010d}"


def test_events_are_delivered_signed_and_retried(toloka_server, session, funded, receiver):
    from workers.jobs.webhooks import retry_webhooks

    requester, token = funded
    client = toloka.TolokaClient(token, url=toloka_server.url, retries=0)
    pool = make_pool(session, requester, overlap=1, general_per_suite=1, control_per_suite=0)
    (task,) = add_tasks(session, pool, general=1)
    Event = toloka.webhook_subscription.WebhookSubscription.EventType
    result = client.upsert_webhook_subscriptions(
        [
            {"webhook_url": receiver.url, "event_type": Event.ASSIGNMENT_SUBMITTED,
             "pool_id": _pid(pool.id), "secret_key": "s3cret"},
            {"webhook_url": receiver.url, "event_type": Event.POOL_CLOSED,
             "pool_id": _pid(pool.id), "secret_key": "s3cret"},
            {"webhook_url": receiver.url, "event_type": Event.DYNAMIC_OVERLAP_COMPLETED,
             "pool_id": _pid(pool.id)},
        ]
    )  # fmt: skip
    assert sorted(result.items) == ["0", "1"] and list(result.validation_errors) == ["2"]
    listed = list(client.get_webhook_subscriptions(pool_id=_pid(pool.id)))
    assert len(listed) == 2 and client.get_webhook_subscription(listed[0].id).pool_id == _pid(
        pool.id
    )

    open_pool(session, requester, pool)
    labeler = make_labeler(session)
    with new_session(write=True) as s:  # the labeling path: completes and closes the pool
        view = assignments.assign_next_suite(s, labeler=labeler, pool_id=pool.id)
        submissions.submit_assignment(
            s, labeler=labeler, assignment_id=view.assignment_id, answers={task.id: "cat"}
        )
    session.expire_all()
    assert session.get(Task, task.id).submitted_count == 1
    # the first POST failed (500): it waits for its backoff, then the periodic step resends
    assert len(receiver.requests) >= 1
    retry_webhooks()
    session.expire_all()
    deliveries = session.exec(select(WebhookDelivery)).all()
    assert {d.status for d in deliveries} == {"delivered"}, [
        (d.status, d.last_error) for d in deliveries
    ]
    assert sorted(d.event["type"] for d in deliveries) == ["ASSIGNMENT_SUBMITTED", "POOL_CLOSED"]
    assert max(d.attempts for d in deliveries) == 2
    for headers, body in receiver.requests:
        expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert headers["X-Crowdlab-Signature"] == expected
        (event,) = json.loads(body)["events"]
        assert event["pool_id"] == _pid(pool.id)

    client.delete_webhook_subscription(listed[0].id)
    assert len(list(client.get_webhook_subscriptions(pool_id=_pid(pool.id)))) == 1


def test_created_skipped_and_expired_suites_are_delivered(toloka_server, session, funded, receiver):
    """take → ASSIGNMENT_CREATED, skip → ASSIGNMENT_SKIPPED, time out → ASSIGNMENT_EXPIRED,
    each for its own assignment; a pool without subscriptions queues nothing."""
    from datetime import timedelta

    from app.db.models import Assignment
    from app.db.types import utcnow

    receiver.fail_first = 0
    requester, token = funded
    client = toloka.TolokaClient(token, url=toloka_server.url, retries=0)
    pool = make_pool(session, requester, overlap=1, general_per_suite=1, control_per_suite=0)
    quiet = make_pool(session, requester, overlap=1, general_per_suite=1, control_per_suite=0)
    add_tasks(session, pool, general=3)
    add_tasks(session, quiet, general=1)
    Event = toloka.webhook_subscription.WebhookSubscription.EventType
    client.upsert_webhook_subscriptions(
        [
            {"webhook_url": receiver.url, "event_type": event, "pool_id": _pid(pool.id)}
            for event in (Event.ASSIGNMENT_CREATED, Event.ASSIGNMENT_SKIPPED,
                          Event.ASSIGNMENT_EXPIRED)
        ]
    )  # fmt: skip
    open_pool(session, requester, pool)
    open_pool(session, requester, quiet)
    labeler = make_labeler(session)
    with new_session(write=True) as s:
        skipped = assignments.assign_next_suite(s, labeler=labeler, pool_id=pool.id)
        assignments.skip_assignment(s, labeler=labeler, assignment_id=skipped.assignment_id)
        expired = assignments.assign_next_suite(s, labeler=labeler, pool_id=pool.id)
        assignments.assign_next_suite(s, labeler=labeler, pool_id=quiet.id)
        row = s.get(Assignment, expired.assignment_id)
        row.expires_at = utcnow() - timedelta(seconds=1)
        s.add(row)
        s.commit()
        assert assignments.expire_overdue(s) == 1
    session.expire_all()
    events = sorted(
        (d.event["type"], d.event["assignment_id"], d.status)
        for d in session.exec(select(WebhookDelivery)).all()
    )
    assert events == sorted(
        [
            ("ASSIGNMENT_CREATED", _pid(skipped.assignment_id), "delivered"),
            ("ASSIGNMENT_SKIPPED", _pid(skipped.assignment_id), "delivered"),
            ("ASSIGNMENT_CREATED", _pid(expired.assignment_id), "delivered"),
            ("ASSIGNMENT_EXPIRED", _pid(expired.assignment_id), "delivered"),
        ]
    )
    received = sorted(json.loads(body)["events"][0]["type"] for _, body in receiver.requests)
    assert received == sorted(e[0] for e in events)


def test_private_receivers_are_refused_unless_allowed(toloka_server, session, funded):
    requester, token = funded
    client = toloka.TolokaClient(token, url=toloka_server.url, retries=0)
    pool = make_pool(session, requester)
    with pytest.raises(exceptions.ValidationApiError) as refused:
        client.upsert_webhook_subscriptions(
            [{"webhook_url": "http://127.0.0.1:9/hook", "event_type": "POOL_CLOSED",
              "pool_id": _pid(pool.id)}]
        )  # fmt: skip
    assert "0.webhook_url" in refused.value.payload
