"""The SQLite file of a study: its schema (version 1) and how it is opened.

One file holds a whole study::

    meta(key TEXT PRIMARY KEY, value TEXT)
        schema_version, created, dump, protocol, dataset, features (the dump's
        model description), distance, rerank (0/1: candidates ranked by the
        re-ranked distance), k1, k2, lambda, shortlist, normalize,
        candidates (K), seed, num_queries
    images(id TEXT PRIMARY KEY, path TEXT UNIQUE)
        one row per image shown; ``id`` is a random opaque id (the only name
        an image has on the web), ``path`` the resolved file
    queries(id TEXT PRIMARY KEY, position INTEGER UNIQUE, query_index INTEGER,
            image_id TEXT, first_match_rank INTEGER, first_match_rank_rerank INTEGER)
        the sampled queries in the order annotators see them; ``query_index``
        is the query's row in the dump; ``first_match_rank(_rerank)``: the
        1-based rank of the best-ranked true match in the full valid gallery
        by the plain (re-ranked) distance
    candidates(id TEXT PRIMARY KEY, query_id TEXT, shown_position INTEGER,
               gallery_index INTEGER, model_rank INTEGER, is_match INTEGER,
               image_id TEXT, distance REAL, distance_rerank REAL)
        each query's candidates; ``shown_position`` is the display order
        (0-based), ``model_rank`` the 1-based rank in the full valid gallery
        by the ranking the candidates were built from
    annotators(id INTEGER PRIMARY KEY, name TEXT UNIQUE, token_hash TEXT UNIQUE,
               created TEXT)
        ``token_hash`` is the SHA-256 of the secret token (the token itself
        is not stored)
    answers(annotator_id INTEGER, query_id TEXT, candidate_id TEXT, answered_at TEXT,
            PRIMARY KEY (annotator_id, query_id))
        one answer per annotator and query; a second one is refused

Query and candidate ids are random opaque strings: nothing in an id tells
the identity, the file name or the model's rank. The database runs in WAL
mode with ``synchronous=FULL``: a committed answer survives a killed process.
"""

import sqlite3

SCHEMA_VERSION = 1

TABLES = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE images (id TEXT PRIMARY KEY, path TEXT NOT NULL UNIQUE);
CREATE TABLE queries (
    id TEXT PRIMARY KEY,
    position INTEGER NOT NULL UNIQUE,
    query_index INTEGER NOT NULL UNIQUE,
    image_id TEXT NOT NULL REFERENCES images(id),
    first_match_rank INTEGER NOT NULL,
    first_match_rank_rerank INTEGER NOT NULL
);
CREATE TABLE candidates (
    id TEXT PRIMARY KEY,
    query_id TEXT NOT NULL REFERENCES queries(id),
    shown_position INTEGER NOT NULL,
    gallery_index INTEGER NOT NULL,
    model_rank INTEGER NOT NULL,
    is_match INTEGER NOT NULL CHECK (is_match IN (0, 1)),
    image_id TEXT NOT NULL REFERENCES images(id),
    distance REAL NOT NULL,
    distance_rerank REAL NOT NULL,
    UNIQUE (query_id, shown_position),
    UNIQUE (query_id, gallery_index)
);
CREATE TABLE annotators (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL
);
CREATE TABLE answers (
    annotator_id INTEGER NOT NULL REFERENCES annotators(id),
    query_id TEXT NOT NULL REFERENCES queries(id),
    candidate_id TEXT NOT NULL REFERENCES candidates(id),
    answered_at TEXT NOT NULL,
    PRIMARY KEY (annotator_id, query_id)
);
"""


class StudyError(ValueError):
    """A study file that cannot be used (missing, not a study, another schema version)."""


def connect(path, *, create=False):
    """Open a study's SQLite file (WAL, foreign keys, ``synchronous=FULL``).

    Args:
        path: the ``.sqlite`` file.
        create: make the tables in a new, empty file.

    Returns:
        ``sqlite3.Connection`` (usable from any thread; autocommit off).

    Raises:
        StudyError: the file is missing, is not a study, or has another
            schema version.

    Example:
        >>> con = connect("s.sqlite", create=True)
        >>> con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        '1'
    """
    import os

    if not create and not os.path.isfile(path):
        raise StudyError(f"{path}: no such study file")
    con = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("PRAGMA foreign_keys=ON")
    con.execute("PRAGMA busy_timeout=30000")
    if create:
        con.executescript(TABLES)
        con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        con.commit()
        return con
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError:
        con.close()
        raise StudyError(f"{path}: not a study file (no meta table)") from None
    if row is None or row[0] != str(SCHEMA_VERSION):
        con.close()
        found = row[0] if row else "none"
        raise StudyError(f"{path}: schema version {found}, expected {SCHEMA_VERSION}")
    return con


def read_meta(con):
    """The ``meta`` table as a dict of strings."""
    return dict(con.execute("SELECT key, value FROM meta").fetchall())
