"""The human-performance study of the AlignedReID paper's section 5.

A study is built from a feature dump (``create_study``): N queries, each with
the paper's candidate set (the model's top K with every true match put in,
shuffled by a seed), stored in one SQLite file (``human_study.schema``).
Annotators pick one candidate per query in a web page (``make_app``, served
by waitress); ``study_report`` ranks them against the model as the paper's
Table 6 does. ``reid-human`` (``python -m human_study``) is the command line;
see docs/human_study.md.

This package uses ``reference`` for the scoring and never imports ``reid_tf``,
TensorFlow or Keras.
"""

from reid_common import lazy_exports

_EXPORTS = {
    "DEFAULT_K": "candidates",
    "candidate_positions": "candidates",
    "default_candidates": "candidates",
    "display_order": "candidates",
    "sample_study_queries": "candidates",
    "SCHEMA_VERSION": "schema",
    "StudyError": "schema",
    "connect": "schema",
    "CreateError": "create",
    "StudyInfo": "create",
    "create_study": "create",
    "eligible_queries": "create",
    "AnswerError": "store",
    "Store": "store",
    "make_app": "web",
    "make_server": "web",
    "annotate_url": "web",
    "binomial_ci": "stats",
    "StudyReport": "report",
    "format_report": "report",
    "report_figure": "report",
    "study_report": "report",
    "write_report_plot": "report",
    "export_study": "export",
    "DemoInfo": "demo",
    "make_demo": "demo",
    "main": "cli",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
