"""The real server (``reid-human serve`` in a subprocess, waitress): SIGKILL and concurrency."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from human_study import Store

REPO = Path(__file__).resolve().parents[2]


def _get(base, path):
    with urllib.request.urlopen(base + path, timeout=30) as r:
        return r.status, json.loads(r.read())


def _post(base, body):
    req = urllib.request.Request(base + "/api/answer", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def server(small_study):
    """``python -m human_study serve STUDY --port 0`` on 127.0.0.1; yields (process, base URL)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "human_study", "serve", small_study, "--host", "127.0.0.1",
         "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert found, (line, proc.stderr.read() if proc.poll() is not None else "")
        yield proc, f"http://127.0.0.1:{found.group(1)}"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()


def test_answers_survive_a_sigkill_of_the_server(small_study, server):
    proc, base = server
    token = Store(small_study).add_annotator("ann")[1]
    picked = []
    for _ in range(4):
        status, nxt = _get(base, f"/api/next?token={token}")
        assert status == 200
        cid = nxt["candidates"][2]["id"]
        status, body = _post(base, {"token": token, "query_id": nxt["query_id"],
                                    "candidate_id": cid})
        assert status == 200
        picked.append((nxt["query_id"], cid))
    assert body == {"answered": 4, "total": 6}
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    con = sqlite3.connect(small_study)
    got = con.execute("SELECT query_id, candidate_id FROM answers ORDER BY answered_at").fetchall()
    con.close()
    assert got == picked


def test_concurrent_annotators(small_study, server):
    _, base = server
    store = Store(small_study)
    tokens = [store.add_annotator(f"a{i}")[1] for i in range(8)]
    store.close()
    errors = []
    statuses = []
    start = threading.Barrier(len(tokens) + 1)

    def annotate(token):
        try:
            start.wait(timeout=30)
            while True:
                _, nxt = _get(base, f"/api/next?token={token}")
                if nxt["done"]:
                    return
                status, _ = _post(base, {"token": token, "query_id": nxt["query_id"],
                                         "candidate_id": nxt["candidates"][0]["id"]})
                statuses.append(status)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=annotate, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    start.wait(timeout=30)
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert statuses == [200] * (8 * 6)
    con = sqlite3.connect(small_study)
    per = con.execute("SELECT annotator_id, COUNT(*) FROM answers GROUP BY annotator_id").fetchall()
    con.close()
    assert sorted(n for _, n in per) == [6] * 8


def test_the_same_answer_posted_at_once_counts_once(small_study, server):
    _, base = server
    token = Store(small_study).add_annotator("ann")[1]
    _, nxt = _get(base, f"/api/next?token={token}")
    body = {"token": token, "query_id": nxt["query_id"], "candidate_id": nxt["candidates"][0]["id"]}
    statuses = []
    barrier = threading.Barrier(6)

    def post():
        barrier.wait(timeout=30)
        statuses.append(_post(base, body)[0])

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(statuses) == [200] + [409] * 5
    assert _get(base, f"/api/next?token={token}")[1]["answered"] == 1
