"""Numba CPU reference for AlignedReID.

Aligned local distance (value, path and gradient), the TriHard reference loss,
k-reciprocal re-ranking, ReID metrics and protocols, and the HDF5 feature-dump
schema. This package never imports TensorFlow or Keras.

Public names are importable from the package root; their modules are loaded on
first use so that ``import reference`` stays fast.
"""

from reid_common import lazy_exports

_EXPORTS = {
    # aligned local distance
    "local_distance": "aligned",
    "local_path": "aligned",
    "local_distance_pairs": "aligned",
    "local_distance_matrix": "aligned",
    "local_distance_grad": "aligned",
    "unaligned_local_distance_pairs": "aligned",
    "jit_cache_hits": "aligned",
    # training-loss reference
    "trihard_reference": "trihard",
    # Euclidean distances
    "pairwise_distance": "euclidean",
    "global_topk": "vectors",
    "normalize_rows": "vectors",
    # re-ranking
    "re_rank": "rerank",
    "re_rank_features": "rerank",
    # metrics and protocols
    "evaluate": "metrics",
    "PROTOCOLS": "metrics",
    # scoring: features or a dump -> distances -> metrics
    "DISTANCES": "distance_cache",
    "DistanceCache": "distance_cache",
    "RerankParams": "scoring",
    "ScoreResult": "scoring",
    "ranking_matrix": "scoring",
    "score": "scoring",
    "as_rerank_params": "scoring",
    "score_dump": "scoring",
    # feature dumps
    "write_dump": "dump",
    "read_dump": "dump",
    "FeatureDump": "dump",
    "DumpError": "dump",
    # synthetic features
    "labelled_features": "synthetic",
    # figures
    "ranked_list_figure": "figures.ranked_list",
    "ranked_gallery": "figures.ranked_list",
    "valid_gallery": "figures.ranked_list",
    "true_matches": "figures.ranked_list",
    "ranked_results_figure": "figures.ranked_list",
    "resolve_image": "figures.images",
    "alignment_figure": "figures.alignment",
    "alignment_candidates": "figures.pairs",
    "CMCCurve": "figures.cmc",
    "cmc_figure": "figures.cmc",
    "write_cmc_figure": "figures.cmc",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
