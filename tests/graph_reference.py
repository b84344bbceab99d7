"""Slow, direct loops written from the authors' MATLAB/C++ release of the explanatory graph (one
image, filter, node and candidate at a time, 0-based here where the release is 1-based). The tests
check the vectorised ``zfhelpers.graph.model`` / ``zfhelpers.graph.evaluate`` against them."""

from __future__ import annotations

import math

import numpy as np

SQRT2PI = math.sqrt(2 * math.pi)


def matlab_round(x: float) -> float:
    return math.copysign(math.floor(abs(x) + 0.5), x)


def gauss(d: float, sigma: float) -> float:  # getGauss in getProb_local_mex.cpp
    return math.exp(-(d**2) / (2 * sigma**2)) / (SQRT2PI * sigma)


def candidates(sigma: float, h: int, grid: int = 6, max_range: float = 0.3, deform_ratio: float = 3.0) -> list:
    """getBasicSettings.m: mid-points of ``grid`` bins of linspace(−r, r) with
    r = round(min(maxRange·h/2, 3σ))."""
    r = max(1.0, matlab_round(min(max_range * h / 2, sigma * deform_ratio)))  # ≥ 1 for every σ ≥ σ_max/10 used
    edges = np.linspace(-r, r, grid + 1)
    return [(edges[i] + edges[i + 1]) / 2 for i in range(grid)]


def bilinear(evidence: np.ndarray, y: float, x: float) -> float:
    """Bilinear interpolation with zeros outside the map (the package samples the smoothed map)."""
    h, w = evidence.shape
    y0, x0 = math.floor(y), math.floor(x)
    total = 0.0
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                total += wy * wx * evidence[yy, xx]
    return total


def node_candidates(centre, shift, sigma, lam, sigma_par, evidence, h, grid=6):
    """One node in one image (getProb_local_mex.cpp + doE.m): per candidate j (x outer, y inner, as
    the release orders them), D (prob·λ), A (the evidence) and the absolute position."""
    cand = candidates(sigma, h, grid)
    cy, cx = centre[0] + shift[0], centre[1] + shift[1]
    out = []
    for ox in cand:  # p1 → w
        for oy in cand:  # p2 → h
            d = gauss(ox, sigma_par) * gauss(oy, sigma_par) * lam
            out.append((d, bilinear(evidence, cy + oy, cx + ox), (cy + oy, cx + ox)))
    return out


def other_prob(positions: list, probs: list) -> list:
    """getOtherProb.cpp for one filter in one image: for node pt, candidate ct, the sum over nodes p
    of p's D at its candidate nearest to pt's candidate position (0 outside p's first..last box)."""
    n = len(positions)
    out = []
    for pt in range(n):
        row = []
        for ht, wt in positions[pt]:
            total = 0.0
            for p in range(n):
                pos = positions[p]
                if ht < pos[0][0] or wt < pos[0][1] or ht > pos[-1][0] or wt > pos[-1][1]:
                    continue
                best, value = 1e300, 0.0
                for c, (hc, wc) in enumerate(pos):
                    dist = (ht - hc) ** 2 + (wt - wc) ** 2
                    if dist < best:
                        best, value = dist, probs[p][c]
                total += value
            row.append(total)
        out.append(row)
    return out


def e_step(evidence, centers, sigma, shift, lam, sigma_par, h, tau_rate=0.1, grid=6):
    """learn_explanatoryGraph.m's parfor body for every image: q, D·A, positions, S and T.
    ``evidence`` I×C×h×w, ``centers`` C×N×2, ``sigma`` C×N, ``shift`` I×C×N×2, ``lam`` I×C×N,
    ``sigma_par`` C×N (numpy float64)."""
    n_img, c, _, _ = evidence.shape
    n = centers.shape[1]
    g2 = grid**2
    q, da = np.zeros((n_img, c, n, g2)), np.zeros((n_img, c, n, g2))
    positions, score, rank = np.zeros((n_img, c, n, 2)), np.zeros((n_img, c, n)), np.zeros((n_img, c, n))
    for i in range(n_img):
        nodes = [[node_candidates(centers[ch, v], shift[i, ch, v], sigma[ch, v], lam[i, ch, v], sigma_par[ch, v],
                                  evidence[i, ch], h, grid) for v in range(n)] for ch in range(c)]  # fmt: skip
        tau = tau_rate * np.mean([sum(d for d, _, _ in nodes[ch][v]) for ch in range(c) for v in range(n)])
        for ch in range(c):
            probs = [[d for d, _, _ in nodes[ch][v]] for v in range(n)]
            others = other_prob([[p for _, _, p in nodes[ch][v]] for v in range(n)], probs)
            for v in range(n):
                for j, (d, a, _) in enumerate(nodes[ch][v]):
                    q[i, ch, v, j] = d / max(others[v][j] + tau, 1e-7) * a
                    da[i, ch, v, j] = d * a
                best = int(np.argmax(da[i, ch, v]))  # first maximum, like MATLAB's max
                positions[i, ch, v] = nodes[ch][v][best][2]
                score[i, ch, v] = da[i, ch, v, best]
                rank[i, ch, v] = da[i, ch, v].sum()
    return {"q": q, "da": da, "positions": positions, "score": score, "rank": rank}


def m_step(centers, sigma, q, da, sigma_par, t, h, density, grid=6):
    """updateModel in learn_explanatoryGraph.m: the centre moves by Σ q·o/σ_par² / Σ q × minDelta²;
    σ is the grid-index RMS of D·A times the grid spacing, clipped to [σ_max/10, σ_max]."""
    c, n = sigma.shape
    new_c, new_s = centers.copy(), sigma.copy()
    min_delta = sigma_par.min() / t**0.25
    k = np.arange(1, grid + 1) - np.mean(np.arange(1, grid + 1))
    sigma_max = 1 / math.sqrt(density)
    for ch in range(c):
        for v in range(n):
            cand = candidates(sigma[ch, v], h)
            num, den, var, tot = np.zeros(2), 0.0, 0.0, 0.0
            for j in range(grid * grid):
                ix, iy = divmod(j, grid)
                o = np.array([cand[iy], cand[ix]])
                for i in range(q.shape[0]):
                    num += q[i, ch, v, j] * o / sigma_par[ch, v] ** 2
                    den += q[i, ch, v, j]
                    var += da[i, ch, v, j] * (k[iy] ** 2 + k[ix] ** 2)
                    tot += da[i, ch, v, j]
            new_c[ch, v] = centers[ch, v] + num / max(den, 1e-8) * min_delta**2
            s = math.sqrt(var / tot) * (cand[1] - cand[0]) if tot > 0 else 0.0  # MATLAB's max ignores NaN
            new_s[ch, v] = min(max(s, sigma_max / 10), sigma_max)
    return new_c, new_s


def parent_terms(parents, up_delta, up_sigma, scale=1.0):
    """getCurDistribution.m: Δ (curMu), σ_par (curDelta) and absolute λ (curLambda) per image and
    node; ``parents`` C×N×M, ``up_delta`` I×U×2 and ``up_sigma`` U in the parent's units, times
    ``scale`` (1 = the release)."""
    c, n, m = parents.shape
    n_img = up_delta.shape[0]
    mu, lam, sig = np.zeros((n_img, c, n, 2)), np.zeros((n_img, c, n)), np.zeros((c, n))
    for ch in range(c):
        for v in range(n):
            ups = parents[ch, v]
            s = [up_sigma[u] * scale for u in ups]
            weights = [(1 / m) / si**2 for si in s]
            sig[ch, v] = math.sqrt(1 / sum(weights))
            for i in range(n_img):
                mu[i, ch, v] = sum(w * up_delta[i, u] * scale for w, u in zip(weights, ups)) / sum(weights)
                value = 1.0
                for u, si in zip(ups, s):
                    d2 = float(((mu[i, ch, v] - up_delta[i, u] * scale) ** 2).sum())
                    value *= math.exp(-d2 / (2 * m * si**2)) / si
                lam[i, ch, v] = value * sig[ch, v]
    return mu, lam, sig


def select_parents(pos, scores, up_pos, up_rank, up_size, stride, up_stride, parents=15, candidates=600,
                   min_var_rate=0.5, edge_cut=0.1):  # fmt: skip
    """getCurDistribution.m's parent choice, one node at a time. ``pos`` I×V×2 and ``up_pos``
    I×U×2 map units, ``scores`` I×V (S), ``up_rank`` I×U (T). The border test uses the parent's
    own map size (the release uses the child's) and displacements are stride × units (the release's
    x2p_ adds a constant offset)."""
    n_img, n_up = up_pos.shape[:2]
    up_mean = up_pos.mean(0)
    var = [float(np.var(up_pos[:, u, 0], ddof=1) + np.var(up_pos[:, u, 1], ddof=1)) for u in range(n_up)]
    dropped = set(sorted(range(n_up), key=lambda u: var[u])[: math.ceil(n_up * min_var_rate)])
    for u in range(n_up):
        p = up_mean[u] + 1  # 1-based
        if any(up_size[a] / 2 - abs(up_size[a] / 2 - p[a]) < up_size[a] * edge_cut for a in range(2)):
            dropped.add(u)
    total = up_rank.sum(0)
    order = sorted(range(n_up), key=lambda u: -total[u])
    cand = [u for u in order if u not in dropped][:candidates]
    up_d = (up_pos - up_mean[None]) * up_stride
    me_d = (pos - pos.mean(0)[None]) * stride
    chosen = []
    for v in range(pos.shape[1]):
        sqrd = np.array([[float(((me_d[i, v] - up_d[i, u]) ** 2).sum()) for i in range(n_img)] for u in cand])
        gain = [float((np.exp(-sqrd[k] / (2 * sqrd.mean())) * scores[:, v]).sum()) for k in range(len(cand))]
        best = sorted(range(len(cand)), key=lambda k: -gain[k])[:parents]
        chosen.append([cand[k] for k in best])
    return np.array(chosen)


def unit_std(pre: np.ndarray) -> np.ndarray:
    """getAvgResponse in getRoughCNN.m: per unit √(mean x² − (mean x)²) over the negatives."""
    n = pre.shape[0]
    out = np.zeros(pre.shape[1:])
    for idx in np.ndindex(*pre.shape[1:]):
        s1 = sum(float(pre[(i, *idx)]) for i in range(n))
        s2 = sum(float(pre[(i, *idx)]) ** 2 for i in range(n))
        out[idx] = math.sqrt(max(s2 / n - (s1 / n) ** 2, 0.0))
    return out
