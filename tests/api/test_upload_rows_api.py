"""TSV uploads through the API: a bad byte is a clean refusal naming its row."""

from __future__ import annotations

from tests.builders.pools import make_pool


def test_a_nul_byte_in_a_tsv_row_is_refused_naming_the_row(requester_api, session, requester):
    pool = make_pool(session, requester)
    tsv = b"INPUT:image\nhttps://a.example/1.png\nhttps://a.example/2\x00.png\n"
    response = requester_api.post(
        f"/api/v1/pools/{pool.id}/uploads",
        data={"kind": "tsv"},
        files={"files": ("t.tsv", tsv, "text/tab-separated-values")},
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "UPLOAD_REJECTED"
    assert body["payload"]["row"] == 3 and body["payload"]["column"] == "INPUT:image"
    assert "NUL" in body["message"]
    ok = requester_api.post(
        f"/api/v1/pools/{pool.id}/uploads",
        data={"kind": "tsv"},
        files={"files": ("t.tsv", tsv.replace(b"\x00", b""), "text/tab-separated-values")},
    )
    assert ok.status_code == 201 and ok.json()["created"]["general"] == 2
