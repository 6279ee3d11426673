"""The web app through Flask's test client: tokens, answers, and nothing that reveals identity."""

import os
import re
import sqlite3

import pytest

from human_study import Store, make_app

from .conftest import PIDS


@pytest.fixture
def app_and_tokens(small_study):
    store = Store(small_study)
    tokens = {name: store.add_annotator(name)[1] for name in ("ann", "bob")}
    app = make_app(small_study)
    return app, tokens, small_study


def _match_map(study):
    con = sqlite3.connect(study)
    out = dict(con.execute("SELECT id, is_match FROM candidates"))
    con.close()
    return out


def test_tokens_are_checked(app_and_tokens):
    app, tokens, _ = app_and_tokens
    c = app.test_client()
    assert c.get("/api/next").status_code == 401
    assert c.get("/api/next?token=nope").status_code == 403
    assert c.get("/annotate?token=nope").status_code == 403
    assert c.get("/annotate").status_code == 401
    nxt = c.get(f"/api/next?token={tokens['ann']}").get_json()
    body = {"query_id": nxt["query_id"], "candidate_id": nxt["candidates"][0]["id"]}
    assert c.post("/api/answer", json=body).status_code == 401
    assert c.post("/api/answer", json={**body, "token": "nope"}).status_code == 403
    assert c.post("/api/answer", data="not json").status_code == 400
    assert c.get(f"/api/next?token={tokens['ann']}").get_json()["answered"] == 0


def test_next_answer_and_a_second_answer_is_409_and_not_counted(app_and_tokens):
    app, tokens, study = app_and_tokens
    c = app.test_client()
    t = tokens["ann"]
    nxt = c.get(f"/api/next?token={t}").get_json()
    assert list(nxt) == ["done", "answered", "total", "query_id", "query_url", "candidates"]
    assert nxt["done"] is False and nxt["answered"] == 0 and nxt["total"] == 6
    assert len(nxt["candidates"]) == 10
    assert all(set(x) == {"id", "url"} for x in nxt["candidates"])
    first, second = nxt["candidates"][0]["id"], nxt["candidates"][1]["id"]
    r = c.post("/api/answer", json={"token": t, "query_id": nxt["query_id"], "candidate_id": first})
    assert r.status_code == 200 and r.get_json() == {"answered": 1, "total": 6}
    r = c.post("/api/answer", json={"token": t, "query_id": nxt["query_id"], "candidate_id": second})
    assert r.status_code == 409
    assert c.get(f"/api/next?token={t}").get_json()["answered"] == 1
    con = sqlite3.connect(study)
    assert con.execute("SELECT candidate_id FROM answers").fetchall() == [(first,)]
    con.close()
    # the other annotator starts at the same first query, its own progress at 0
    other = c.get(f"/api/next?token={tokens['bob']}").get_json()
    assert other["answered"] == 0 and other["query_id"] == nxt["query_id"]


def test_a_candidate_of_another_query_or_an_unknown_query_is_refused(app_and_tokens):
    app, tokens, _ = app_and_tokens
    c = app.test_client()
    t = tokens["ann"]
    a = c.get(f"/api/next?token={t}").get_json()
    c.post("/api/answer", json={"token": t, "query_id": a["query_id"],
                                "candidate_id": a["candidates"][0]["id"]})
    b = c.get(f"/api/next?token={t}").get_json()
    r = c.post("/api/answer", json={"token": t, "query_id": b["query_id"],
                                    "candidate_id": a["candidates"][1]["id"]})
    assert r.status_code == 400
    r = c.post("/api/answer", json={"token": t, "query_id": "nope", "candidate_id": "x"})
    assert r.status_code == 404
    assert c.get(f"/api/next?token={t}").get_json()["answered"] == 1


def test_resume_where_the_annotator_stopped_and_finish(app_and_tokens):
    app, tokens, _ = app_and_tokens
    t = tokens["bob"]
    seen = []
    for _ in range(3):
        nxt = app.test_client().get(f"/api/next?token={t}").get_json()
        seen.append(nxt["query_id"])
        app.test_client().post("/api/answer", json={
            "token": t, "query_id": nxt["query_id"], "candidate_id": nxt["candidates"][-1]["id"]})
    # a new app on the same file (a restarted server) carries on at query 4
    app2 = make_app(app.config["STORE"].path)
    c = app2.test_client()
    nxt = c.get(f"/api/next?token={t}").get_json()
    assert nxt["answered"] == 3 and nxt["query_id"] not in seen
    while not nxt["done"]:
        c.post("/api/answer", json={"token": t, "query_id": nxt["query_id"],
                                    "candidate_id": nxt["candidates"][0]["id"]})
        nxt = c.get(f"/api/next?token={t}").get_json()
    assert nxt == {"done": True, "answered": 6, "total": 6, "query_id": None,
                   "query_url": None, "candidates": []}


def _forbidden_strings(study):
    """Every string that would reveal an identity or a file: paths, names, pids."""
    con = sqlite3.connect(study)
    paths = [p for (p,) in con.execute("SELECT path FROM images")]
    con.close()
    out = set()
    for p in paths:
        out.add(p)
        out.add(os.path.basename(p))
        out.add(os.path.splitext(os.path.basename(p))[0])
        folder = os.path.basename(os.path.dirname(p))
        if folder != "query":  # a common word; the page says "Query"
            out.add(folder)  # bounding_box_test
        out.add(os.path.dirname(p))
    out |= {f"{p:04d}" for p in PIDS} | {str(p) for p in PIDS}
    out |= {"_c1s1_", "_c2s1_", ".jpg", "bounding_box", "pid", "camid", "is_match",
            "model_rank", "gallery_index", "query_index"}
    return out


def test_nothing_served_reveals_identity_or_file(app_and_tokens):
    app, tokens, study = app_and_tokens
    c = app.test_client()
    t = tokens["ann"]
    served = []  # (what, bytes scanned)

    def record(what, response, body=True):
        head = "".join(f"{k}: {v}\n" for k, v in response.headers.items()).encode()
        served.append((what, head + (response.get_data() if body else b"")))
        return response

    record("page", c.get(f"/annotate?token={t}"))
    record("index", c.get("/"))
    for name in ("annotate.js", "annotate.css"):
        r = record(name, c.get(f"/static/{name}"))
        assert r.status_code == 200
    matches = _match_map(study)
    images = 0
    while True:
        nxt = record("next", c.get(f"/api/next?token={t}")).get_json()
        if nxt["done"]:
            break
        for url in [nxt["query_url"]] + [x["url"] for x in nxt["candidates"]]:
            assert re.fullmatch(r"/image/[A-Za-z0-9_-]{16}", url), url
            r = record("image", c.get(url), body=False)
            assert r.status_code == 200 and r.mimetype == "image/jpeg"
            assert "Content-Disposition" not in r.headers and "Last-Modified" not in r.headers
            assert "ETag" not in r.headers
            images += 1
        wrong = [x["id"] for x in nxt["candidates"] if not matches[x["id"]]]
        pick = (wrong or [nxt["candidates"][0]["id"]])[0]
        record("answer", c.post("/api/answer", json={
            "token": t, "query_id": nxt["query_id"], "candidate_id": pick}))
        # the answer says nothing about correctness
    assert images == 6 * 11
    record("404", c.get("/image/nope"))
    record("404", c.get("/static/../schema.py"))
    bad = []
    for what, data in served:
        text = data.decode("utf-8", errors="replace")
        bad += [f"{what}: {s!r}" for s in _forbidden_strings(study) if s and s in text]
    assert bad == []
    # candidate ids do not follow the model's rank: not sorted the same way
    con = sqlite3.connect(study)
    rows = con.execute("SELECT query_id, id, model_rank FROM candidates "
                       "ORDER BY query_id, model_rank").fetchall()
    con.close()
    by_q = {}
    for q, cid, _ in rows:
        by_q.setdefault(q, []).append(cid)
    assert any(ids != sorted(ids) for ids in by_q.values())
