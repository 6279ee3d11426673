"""The annotation web app (Flask) and its production server (waitress).

Routes:
    ``GET /annotate?token=T``  the page (HTML, with ``/static/annotate.js``)
    ``GET /api/next?token=T``  the annotator's next query, or ``done``
    ``POST /api/answer``       ``{"token", "query_id", "candidate_id"}``
    ``GET /image/<id>``        an image's bytes under its opaque id

Nothing served names a file, a path or an identity: images have random ids,
their bytes go out with the image type read from the bytes themselves and no
file-name or date headers. A missing token is 401, an unknown one 403.
"""

import os

from flask import Flask, Response, jsonify, request, send_from_directory

from human_study.store import AnswerError, Store

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)

SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; frame-ancestors 'none'",
}


def image_type(data):
    """The MIME type of image bytes by their signature (``application/octet-stream`` if unknown).

    Example:
        >>> image_type(b"\\xff\\xd8\\xff\\xe0rest"), image_type(b"????")
        ('image/jpeg', 'application/octet-stream')
    """
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def _error(status, message):
    response = jsonify({"error": message})
    response.status_code = status
    return response


def make_app(study):
    """The Flask app of a study.

    Args:
        study: the study's ``.sqlite`` path (or an open :class:`Store`).

    Returns:
        ``flask.Flask``.
    """
    store = study if isinstance(study, Store) else Store(study)
    app = Flask("human_study", static_folder=None)
    app.config["STORE"] = store
    app.json.sort_keys = False

    def who(token):
        if not token:
            return None, _error(401, "token: missing")
        found = store.annotator(token)
        if found is None:
            return None, _error(403, "token: unknown")
        return found, None

    @app.after_request
    def _headers(response):
        for key, value in SECURITY_HEADERS.items():
            response.headers[key] = value
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/")
    def index():
        return Response("<!doctype html><title>Human study</title>"
                        "<p>Open the personal link you were given.</p>",
                        mimetype="text/html")

    @app.get("/annotate")
    def annotate():
        _, err = who(request.args.get("token", ""))
        if err is not None:
            status = err.status_code
            return Response("<!doctype html><title>Human study</title>"
                            "<p>This link is not valid.</p>", status=status, mimetype="text/html")
        with open(os.path.join(STATIC, "annotate.html"), "rb") as f:
            return Response(f.read(), mimetype="text/html")

    @app.get("/static/<name>")
    def static_file(name):
        if name not in ("annotate.js", "annotate.css"):
            return _error(404, "not found")
        response = send_from_directory(STATIC, name, etag=False, last_modified=None,
                                       conditional=False)
        response.headers.pop("Last-Modified", None)
        response.headers.pop("Content-Disposition", None)
        return response

    @app.get("/api/next")
    def api_next():
        found, err = who(request.args.get("token", ""))
        if err is not None:
            return err
        answered, total = store.progress(found[0])
        nxt = store.next_query(found[0])
        if nxt is None:
            return jsonify({"done": True, "answered": answered, "total": total,
                            "query_id": None, "query_url": None, "candidates": []})
        return jsonify({
            "done": False, "answered": answered, "total": total,
            "query_id": nxt["query_id"], "query_url": f"/image/{nxt['image_id']}",
            "candidates": [{"id": cid, "url": f"/image/{iid}"} for cid, iid in nxt["candidates"]],
        })

    @app.post("/api/answer")
    def api_answer():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _error(400, "expected a JSON object {token, query_id, candidate_id}")
        found, err = who(body.get("token"))
        if err is not None:
            return err
        try:
            answered, total = store.answer(found[0], body.get("query_id"), body.get("candidate_id"))
        except AnswerError as exc:
            return _error(exc.status, str(exc))
        return jsonify({"answered": answered, "total": total})

    @app.get("/image/<image_id>")
    def image(image_id):
        path = store.image_path(image_id)
        if path is None:
            return _error(404, "not found")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return _error(404, "not found")
        response = Response(data, mimetype=image_type(data))
        response.headers["Cache-Control"] = "private, max-age=3600"
        return response

    @app.errorhandler(404)
    def _not_found(_):
        return _error(404, "not found")

    @app.errorhandler(405)
    def _not_allowed(_):
        return _error(405, "method not allowed")

    return app


def make_server(study, *, host="127.0.0.1", port=8000, threads=8):
    """A waitress server of the study's app, bound and ready to ``run()``.

    Args:
        study: the study's ``.sqlite`` path.
        host, port: where to listen (port 0: a free port, see
            ``server.effective_port``).
        threads: request threads.

    Returns:
        the waitress server.
    """
    from waitress import create_server

    return create_server(make_app(study), host=host, port=int(port), threads=int(threads),
                         ident="", clear_untrusted_proxy_headers=True)


def annotate_url(host, port, token):
    """The personal link of an annotator.

    Example:
        >>> annotate_url("127.0.0.1", 8000, "abc")
        'http://127.0.0.1:8000/annotate?token=abc'
    """
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{int(port)}/annotate?token={token}"
