"""Reading and writing a study's SQLite file: annotators, the next query, answers.

Each thread has its own connection (a web server answers requests on several
threads); every write is one transaction committed before the call returns.
"""

import datetime
import hashlib
import secrets
import sqlite3
import threading

from human_study.schema import StudyError, connect, read_meta

MAX_NAME = 100


class AnswerError(ValueError):
    """An answer that is not recorded; ``status`` is the HTTP status that says why."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def token_hash(token):
    """The SHA-256 (hex) a token is stored as.

    Example:
        >>> len(token_hash("abc"))
        64
    """
    return hashlib.sha256(str(token).encode("utf-8")).hexdigest()


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Store:
    """A study file opened for annotation and reporting.

    Args:
        path: the study's ``.sqlite`` file.

    Raises:
        StudyError: the file is missing or not a study of this schema version.

    Example:
        >>> from human_study.schema import connect
        >>> connect("s.sqlite", create=True).close()
        >>> store = Store("s.sqlite")
        >>> name, token = store.add_annotator("ann")
        >>> store.annotator(token)[1], store.annotator("wrong")
        ('ann', None)
    """

    def __init__(self, path):
        self.path = str(path)
        self._local = threading.local()
        self.meta = read_meta(self._con())

    def _con(self):
        con = getattr(self._local, "con", None)
        if con is None:
            con = connect(self.path)
            self._local.con = con
        return con

    def close(self):
        """Close this thread's connection."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # ----------------------------------------------------------- annotators
    def add_annotator(self, name):
        """Create an annotator with a new secret token; return ``(name, token)``.

        Raises:
            StudyError: an empty or too long name, or a name already taken.
        """
        name = " ".join(str(name).split())
        if not name or len(name) > MAX_NAME:
            raise StudyError(f"name: expected 1 to {MAX_NAME} characters, got {name!r}")
        token = secrets.token_urlsafe(24)
        con = self._con()
        try:
            with con:
                con.execute("INSERT INTO annotators (name, token_hash, created) VALUES (?, ?, ?)",
                            (name, token_hash(token), _now()))
        except sqlite3.IntegrityError:
            raise StudyError(f"name: an annotator called {name!r} already exists") from None
        return name, token

    def annotator(self, token):
        """``(id, name)`` of the annotator holding ``token``, or None."""
        if not isinstance(token, str) or not token:
            return None
        row = self._con().execute("SELECT id, name FROM annotators WHERE token_hash = ?",
                                  (token_hash(token),)).fetchone()
        return None if row is None else (int(row[0]), row[1])

    def annotators(self):
        """``[(id, name)]`` of every annotator, in creation order."""
        return [(int(i), n) for i, n in
                self._con().execute("SELECT id, name FROM annotators ORDER BY id")]

    # --------------------------------------------------------------- queries
    def progress(self, annotator_id):
        """``(answered, total)`` of one annotator."""
        con = self._con()
        answered = con.execute("SELECT COUNT(*) FROM answers WHERE annotator_id = ?",
                               (annotator_id,)).fetchone()[0]
        total = con.execute("SELECT COUNT(*) FROM queries").fetchone()[0]
        return int(answered), int(total)

    def next_query(self, annotator_id):
        """The first query (in study order) the annotator has not answered, or None.

        Returns:
            dict with ``query_id``, ``image_id`` and ``candidates``: a list of
            ``(candidate_id, image_id)`` in the shown order.
        """
        con = self._con()
        row = con.execute(
            "SELECT id, image_id FROM queries WHERE id NOT IN "
            "(SELECT query_id FROM answers WHERE annotator_id = ?) ORDER BY position LIMIT 1",
            (annotator_id,)).fetchone()
        if row is None:
            return None
        cands = con.execute(
            "SELECT id, image_id FROM candidates WHERE query_id = ? ORDER BY shown_position",
            (row[0],)).fetchall()
        return {"query_id": row[0], "image_id": row[1], "candidates": [tuple(c) for c in cands]}

    def image_path(self, image_id):
        """The file of an opaque image id, or None."""
        if not isinstance(image_id, str):
            return None
        row = self._con().execute("SELECT path FROM images WHERE id = ?", (image_id,)).fetchone()
        return None if row is None else row[0]

    # --------------------------------------------------------------- answers
    def answer(self, annotator_id, query_id, candidate_id):
        """Record an annotator's pick, committed before returning ``(answered, total)``.

        Raises:
            AnswerError: 404 for an unknown query, 400 for a candidate that is
                not one of the query's, 409 when the query is already answered
                (the first answer stands, the second is not recorded).
        """
        if not isinstance(query_id, str) or not isinstance(candidate_id, str):
            raise AnswerError(400, "query_id and candidate_id: expected strings")
        con = self._con()
        with con:
            con.execute("BEGIN IMMEDIATE")
            if con.execute("SELECT 1 FROM queries WHERE id = ?", (query_id,)).fetchone() is None:
                raise AnswerError(404, "query_id: no such query")
            row = con.execute("SELECT 1 FROM candidates WHERE id = ? AND query_id = ?",
                              (candidate_id, query_id)).fetchone()
            if row is None:
                raise AnswerError(400, "candidate_id: not a candidate of this query")
            try:
                con.execute("INSERT INTO answers VALUES (?, ?, ?, ?)",
                            (annotator_id, query_id, candidate_id, _now()))
            except sqlite3.IntegrityError:
                raise AnswerError(409, "query_id: already answered") from None
        return self.progress(annotator_id)

    # ------------------------------------------------------------- reporting
    def answer_table(self):
        """``[(annotator name, query_id, is_match of the pick)]`` of every answer."""
        return [(n, q, bool(m)) for n, q, m in self._con().execute(
            "SELECT a.name, s.query_id, c.is_match FROM answers s "
            "JOIN annotators a ON a.id = s.annotator_id "
            "JOIN candidates c ON c.id = s.candidate_id ORDER BY a.id, s.query_id")]

    def query_rows(self):
        """``[(query_id, query_index, first_match_rank, first_match_rank_rerank)]`` in study order."""
        return [tuple(r) for r in self._con().execute(
            "SELECT id, query_index, first_match_rank, first_match_rank_rerank "
            "FROM queries ORDER BY position")]

    def candidate_rows(self, query_id):
        """The candidates of a query in shown order: dicts of the ``candidates`` columns."""
        cur = self._con().execute(
            "SELECT id, shown_position, gallery_index, model_rank, is_match, distance, "
            "distance_rerank FROM candidates WHERE query_id = ? ORDER BY shown_position",
            (query_id,))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur]
