"""Regenerate the command outputs that README.md and docs/*.md show.

``python -m benchmarks.docs_examples`` runs the commands behind every block
marked ``<!-- regen: NAME -->`` ... ``<!-- /regen -->`` and writes their output
into the block; ``--check`` only compares. ``tests/test_docs_examples.py``
re-runs the cheap ones and fails when a document differs from what the code
prints.
"""
