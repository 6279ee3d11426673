"""Figures of a test set: ranked lists, part alignments and CMC curves.

Each figure is a small module; ranked lists are composed with Pillow, the
others drawn with matplotlib's object API (``Figure``, no pyplot). Pillow and
matplotlib are imported on first use.
"""

from reference.figures.alignment import alignment_figure, draw_alignment, part_distance_matrix
from reference.figures.cmc import CMCCurve, cmc_figure, write_cmc_figure
from reference.figures.images import ReportError, ReportWarning, resolve_image
from reference.figures.pairs import AlignmentCandidate, alignment_candidates, format_candidates
from reference.figures.ranked_list import (
    MAX_TOP_N,
    ranked_gallery,
    ranked_list_figure,
    ranked_list_layout,
    ranked_results_figure,
    sample_queries,
    true_matches,
    valid_gallery,
)

__all__ = [
    "AlignmentCandidate",
    "CMCCurve",
    "MAX_TOP_N",
    "ReportError",
    "ReportWarning",
    "alignment_candidates",
    "alignment_figure",
    "cmc_figure",
    "draw_alignment",
    "format_candidates",
    "part_distance_matrix",
    "ranked_gallery",
    "ranked_list_figure",
    "ranked_list_layout",
    "ranked_results_figure",
    "resolve_image",
    "sample_queries",
    "true_matches",
    "valid_gallery",
    "write_cmc_figure",
]
