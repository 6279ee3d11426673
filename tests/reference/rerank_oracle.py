"""Dense N x N transcription of the re-ranking specification, step by step.

Test oracle only: it allocates several N x N arrays. The one deliberate choice
beyond the specification is the sort: a stable argsort, so equal distances are
ranked by index (the documented tie rule of ``reference.rerank``).
"""

import numpy as np


def dense_re_rank(q_g, q_q, g_g, k1=20, k2=6, lambda_value=0.3):
    """Return the [Q, G] float32 re-ranked distance, dense."""
    q_g, q_q, g_g = (np.asarray(a) for a in (q_g, q_q, g_g))
    nq, ng = q_g.shape
    n = nq + ng
    # 1. block matrix, squared element-wise, float32
    a = np.block([[q_q, q_g], [q_g.T, g_g]])
    a = np.power(a, 2).astype(np.float32)
    # 2. divide every column by its maximum, then transpose
    c = np.transpose(a / np.max(a, axis=0))
    # 3. ascending order of every row (stable: ties by index)
    rank = np.argsort(c, axis=1, kind="stable")
    v = np.zeros((n, n), dtype=np.float32)
    half = int(np.round(k1 / 2))
    # 4. k-reciprocal sets, expansion, weights
    for i in range(n):
        forward = rank[i, : k1 + 1]
        r = [f for f in forward if i in rank[f, : k1 + 1]]
        expansion = list(r)
        for cand in r:
            rc = [f for f in rank[cand, : half + 1] if cand in rank[f, : half + 1]]
            if len(set(rc) & set(r)) > (2.0 / 3.0) * len(rc):
                expansion.extend(rc)
        e = np.unique(np.array(expansion, dtype=np.int64))
        w = np.exp(-c[i, e])
        v[i, e] = w / np.sum(w)
    # 5. keep the query rows of C
    c_q = c[:nq]
    # 6. local query expansion
    if k2 != 1:
        v_new = np.zeros_like(v)
        for i in range(n):
            v_new[i] = np.mean(v[rank[i, :k2]], axis=0)
        v = v_new
    # 7. Jaccard distance of each query to every item
    jaccard = np.zeros((nq, n), dtype=np.float32)
    for i in range(nq):
        shared = np.zeros(n, dtype=np.float32)
        for col in np.flatnonzero(v[i] != 0):
            shared += np.minimum(v[i, col], v[:, col])
        jaccard[i] = 1 - shared / (2.0 - shared)
    # 8. combine, keep the gallery columns
    final = jaccard * (1 - lambda_value) + c_q * lambda_value
    return final[:, nq:]
