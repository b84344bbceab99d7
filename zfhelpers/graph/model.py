"""The explanatory graph (Zhang et al., AAAI 2018, arXiv 1708.01785), reconstructed from the
authors' MATLAB release (docs/papers.md §4.2) and vectorised in torch over images, filters and nodes.

Each filter of a graph layer is explained by N = ⌈ρ·h·w⌉ *nodes* (part patterns). A node V has a
prior centre p̄_V (map units), a deformation scale σ_V and, below the top layer, M parents in the
layer above. In an image, the parents' displacements from their own mean positions shift V's
expected position (Δ_V) and their agreement scales its prior (λ_V). Per image and node:

* candidates o: a G×G grid of displacements on [−r_V, r_V]², r_V = round(min(0.15 h, 3σ_V));
* evidence A_V(o): the Gaussian-smoothed (σ_m = 0.025 h) rectified map at μ_V + o;
* prior D_V(o) = λ_V · N(o_y; 0, σ_par) · N(o_x; 0, σ_par), λ_V an absolute agreement score;
* competition Z_V(o): for every node V′ of the same filter (V included), D_V′ at V′'s candidate
  nearest to μ_V + o if that point lies inside V′'s grid, plus the background τ = 0.1 × the
  layer's mean prior mass in the image;
* E-step mass q_V(o) = D/Z · A; inferred position μ_V + argmax_o D·A with score S_V = max D·A;
  ranking score T_V = Σ_o D·A.

M-step: p̄_V moves by the q-weighted mean displacement (times σ_min,t²/σ_par², σ_min,t =
min σ_par / t^{1/4}); σ_V becomes the D·A-weighted RMS displacement, clipped to
[σ_max/10, σ_max] with σ_max = 1/√ρ. Parents (every iteration after the first, below the top):
drop the upper nodes with the least positional variance (50 %) or a mean position within 10 % of
the border, keep the 600 with the largest total T, and give each node the 15 whose displacements
(in pixels) co-vary best with its own: Σ_I S_V exp(−‖δ_V − δ_U‖² / 2κ_V), κ_V the node's mean
squared difference over the candidates and images. Layers are learned top-down, 20 iterations.

**Left/right.** Objects face either way; a node tied to fixed displacements cannot follow a
mirrored part. Given the maps of the mirrored images, each image is read at the top layer as it
is or mirrored, whichever is closer to a common reference (congealing: the reference starts as the
first image and becomes the mean of the chosen top-layer maps; new images are compared with the
learned reference); the layers below use the top layer's choice, so the whole graph sees one
canonical orientation. Positions on mirrored images are mirrored back (``positions``;
``frame_positions`` keeps the canonical frame). The release meant to choose by the nodes' fit
(Σ log D·A, at every top-layer iteration), but its "flipped" features are those of the unflipped
image (a no-op, §4.2). Choosing by the nodes' fit (we tried their explained mass Σ_V T_V) from a
random start locks in a mixture of both orientations: on planted parts, half of them mirrored, 60 %
are recovered, as without flips, against 98 % with congealing.

**Defaults and the ``faithful`` preset.** Where the release's choice is sound the default is the
release's: absolute λ (it weighs nodes against each other in Z, so it is not a per-node constant),
nearest-candidate competition, a per-node kernel width in parent selection, the std-over-negatives
normaliser of the pre-ReLU output (``zfhelpers.graph.evaluate``). The default departs in two places, both to keep
units consistent: parents' displacements and σ are rescaled from the parent's map units to the
child's (the release adds them unscaled, half the shift for conv5 → conv4), and centres are kept on
the map. ``FAITHFUL`` (``learn_graph(..., faithful=True)``) restores both. Not reproduced in either
mode: the release evaluates evidence on a window around round(μ) with a floor of e^−4.5 beyond 3σ_m
(we sample the smoothed map at μ + o), converts displacements with x2p_'s offset (a constant shift
between layers of different stride) and cuts border parents with the child's map height.

Memory: the E-step runs in image chunks and parent selection in node × image chunks, both within
``GraphParams.chunk_mb``; what grows with the images is only the per-node positions and scores
(:func:`memory_estimate`, checked before a run)."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..fingerprint import fingerprint, load_checkpoint, save_checkpoint, tensor_digest
from ..progress import tqdm

PARENT_UNITS = ("child", "parent")
#: The authors' release: parents' displacements in the parent's map units, centres free to leave the map.
FAITHFUL = {"parent_units": "parent", "clamp_centres": False}


@dataclass(frozen=True)
class GraphParams:
    density: float  # ρ: nodes per filter = ⌈ρ h w⌉ (VGG16: 0.05 at conv4, 0.1 at conv5)
    iterations: int = 20
    grid: int = 6  # candidates per axis
    map_sigma: float = 0.025  # × map height, evidence smoothing
    init_sigma: float = 0.15  # × map height: σ at start and σ_par without parents
    search_range: float = 0.3  # the window's half-range is at most search_range · h / 2
    tau_rate: float = 0.1
    parents: int = 15
    candidates: int = 600
    min_var_rate: float = 0.5
    edge_cut: float = 0.1
    parent_units: str = "child"  # "child" (rescaled, default) or "parent" (the release)
    clamp_centres: bool = True  # the release lets centres leave the map
    chunk_mb: float = 32  # temporaries of the E-step and of parent selection (small chunks stay in cache)

    def __post_init__(self):
        if self.parent_units not in PARENT_UNITS:
            raise ValueError(f"parent_units={self.parent_units!r}; valid: {', '.join(PARENT_UNITS)}")
        if not 0 < self.density <= 1:
            raise ValueError(f"density must be in (0, 1], got {self.density}")
        if self.grid < 2 or self.iterations < 1 or self.parents < 1 or not self.chunk_mb > 0:
            raise ValueError("grid ≥ 2, iterations ≥ 1, parents ≥ 1 and chunk_mb > 0 are required")


@dataclass
class GraphLayer:
    """One learned layer. Node index = filter × N + node. Positions are map units (y, x)."""

    name: str
    size: tuple[int, int]
    stride: float  # input pixels per map unit
    centers: torch.Tensor  # C×N×2
    sigma: torch.Tensor  # C×N
    parents: torch.Tensor | None = None  # C×N×M indices into the upper layer's flattened nodes
    frame_positions: torch.Tensor | None = None  # I×C×N×2 on the training images, canonical frame
    flipped: torch.Tensor | None = None  # I bool: image read in its mirror (None: no flip handling)
    scores: torch.Tensor | None = None  # I×C×N  S_V(I)
    ranking: torch.Tensor | None = None  # I×C×N  T_V(I) / its mean
    mean_position: torch.Tensor | None = None  # C×N×2 canonical frame (the parents' reference)
    reference: torch.Tensor | None = None  # top layer with flip handling: C×h×w mean of the aligned maps
    rank_scale: float = 1.0  # mean T_V over training: rankings on new images use the same scale
    params: GraphParams | None = None
    history: list = field(default_factory=list)

    @property
    def nodes_per_filter(self) -> int:
        return self.centers.shape[1]

    @property
    def positions(self) -> torch.Tensor | None:
        """Inferred positions on the training images, in each image's own frame."""
        if self.frame_positions is None:
            return None
        return to_image_frame(self.frame_positions, self.flipped, self.size[1])


@dataclass
class Inference:
    frame_positions: torch.Tensor  # I×C×N×2 map units, canonical frame
    flipped: torch.Tensor | None  # I bool
    scores: torch.Tensor  # I×C×N  S_V
    ranking: torch.Tensor  # I×C×N  T_V on the training scale
    width: int  # map width (to mirror positions back)

    @property
    def positions(self) -> torch.Tensor:
        """Positions in each image's own frame (mirrored back where the image was read flipped)."""
        return to_image_frame(self.frame_positions, self.flipped, self.width)


def to_image_frame(positions: torch.Tensor, flipped: torch.Tensor | None, width: int) -> torch.Tensor:
    """Mirror x back (x → w − 1 − x) on the images read flipped; ``positions`` I×…×2 (y, x)."""
    if flipped is None or not bool(flipped.any()):
        return positions
    out = positions.clone()
    f = flipped.view(-1, *([1] * (positions.dim() - 2)))
    out[..., 1] = torch.where(f, width - 1 - positions[..., 1], positions[..., 1])
    return out


def _log_gauss1(d: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return -(d**2) / (2 * sigma**2) - torch.log(math.sqrt(2 * math.pi) * sigma)


def smooth_maps(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian smoothing of I×C×h×w rectified maps (truncated at 3σ) — the evidence A."""
    r = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=maps.dtype, device=maps.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / (math.sqrt(2 * math.pi) * sigma)
    c = maps.shape[1]
    x = F.conv2d(maps.clamp_min(0), k.view(1, 1, -1, 1).expand(c, 1, -1, 1).contiguous(), padding=(r, 0), groups=c)
    return F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1).contiguous(), padding=(0, r), groups=c)


def candidate_grid(sigma: torch.Tensor, h: int, params: GraphParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-axis candidate displacements C×N×G (mid-points of G bins on [−r, r]) and r (C×N).

    r = round(min(search_range·h/2, 3σ)) with MATLAB's rounding (half away from zero), at least 1."""
    r = torch.floor(torch.minimum(torch.full_like(sigma, params.search_range * h / 2), 3 * sigma) + 0.5).clamp_min(1)
    g = params.grid
    k = (torch.arange(g, dtype=sigma.dtype, device=sigma.device) + 0.5) / g * 2 - 1  # in (−1, 1)
    return k * r[..., None], r


def grid_offsets(cand: torch.Tensor) -> torch.Tensor:
    """C×N×G → C×N×G²×2 (y, x) displacements, x-major as the release orders them (j = ix·G + iy)."""
    g = cand.shape[-1]
    shape = (*cand.shape[:-1], g, g)
    oy = cand[..., None, :].expand(shape)  # [ix, iy] → cand[iy]
    ox = cand[..., :, None].expand(shape)  # [ix, iy] → cand[ix]
    return torch.stack([oy, ox], -1).flatten(-3, -2)


def _sample(evidence: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """evidence I×C×h×w sampled (bilinear, 0 outside) at pos I×C×K×2 (y, x) → I×C×K."""
    i, c, h, w = evidence.shape
    k = pos.shape[2]
    gx = pos[..., 1] / max(w - 1, 1) * 2 - 1
    gy = pos[..., 0] / max(h - 1, 1) * 2 - 1
    grid = torch.stack([gx, gy], -1).reshape(i * c, k, 1, 2)
    out = F.grid_sample(evidence.reshape(i * c, 1, h, w), grid, mode="bilinear", padding_mode="zeros",
                        align_corners=True)  # fmt: skip
    return out.view(i, c, k)


def competition(mu: torch.Tensor, cand: torch.Tensor, r: torch.Tensor, sigma_par: torch.Tensor,
                lam: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """Σ_V′ D_V′(nearest candidate of V′ to μ_V + o), 0 where μ_V + o is outside V′'s grid (the
    release's ``getOtherProb``), for every image, node V and candidate o: I×C×N×G² (x-major).

    D is separable (λ · g(o_y) · g(o_x)) and on a regular grid the nearest candidate is the nearest
    per axis (ties to the lower index, as the release's first-found rule), so the sum over V′ is a
    G×N′ by N′×G product per node instead of a G²×N′ search."""
    g = cand.shape[-1]
    c, n = cand.shape[:2]
    first, last, step = cand[..., 0], cand[..., -1], (cand[..., 1] - cand[..., 0])[None, :, None, None, :]
    table = torch.exp(_log_gauss1(cand, sigma_par[..., None])).flatten()  # V′'s 1-D prior at each candidate
    base = (torch.arange(c * n, device=cand.device) * g).view(1, c, 1, 1, n)

    def axis(k: int) -> torch.Tensor:  # I×C×N×G×N′: V′'s 1-D prior at its nearest candidate, 0 outside
        p = (mu[..., k, None] + cand[None])[..., None]  # I×C×N×G×1
        lo = (mu[..., k] + first[None])[:, :, None, None, :]  # I×C×1×1×N′
        hi = (mu[..., k] + last[None])[:, :, None, None, :]
        idx = ((p - lo) / step).sub_(0.5).ceil_().clamp_(0, g - 1).long()
        return table.take(idx.add_(base)).mul_((p >= lo) & (p <= hi))

    y = axis(0).mul_(lam[:, :, None, None, :])
    return (axis(1) @ y.transpose(-1, -2)).flatten(-2)  # [ix, iy] = Σ_V′ x[ix, V′] λ_V′ y[iy, V′]


def e_step(evidence: torch.Tensor, layer: GraphLayer, shift: torch.Tensor, log_lam: torch.Tensor,
           sigma_par: torch.Tensor, params: GraphParams, with_q: bool = True) -> dict[str, torch.Tensor]:  # fmt: skip
    """Inference for every image, filter and node of one chunk (see the module docstring).

    ``evidence`` I×C×h×w (smoothed), ``shift`` I×C×N×2 (Δ_V), ``log_lam`` I×C×N (log λ_V),
    ``sigma_par`` C×N. Returns q (unless ``with_q`` is False: positions and scores do not need
    the competition), D·A (I×C×N×G²), the offsets (C×N×G²×2), positions, S and T."""
    n_img, c, h, w = evidence.shape
    n = layer.nodes_per_filter
    cand, r = candidate_grid(layer.sigma, h, params)  # C×N×G
    off = grid_offsets(cand)  # C×N×G²×2
    mu = layer.centers[None] + shift  # I×C×N×2
    pos = mu[:, :, :, None, :] + off[None]  # I×C×N×G²×2
    a = _sample(evidence, pos.reshape(n_img, c, -1, 2)).view(n_img, c, n, -1)
    g1 = torch.exp(_log_gauss1(cand, sigma_par[..., None]))  # C×N×G
    prior = (g1[..., :, None] * g1[..., None, :]).flatten(-2)  # C×N×G², without λ
    lam = log_lam.exp()
    d = lam[..., None] * prior[None]
    da = d * a
    best = (prior[None] * a).argmax(-1)  # = argmax D·A for λ > 0, and safe where λ underflows
    o_hat = off[None].expand(n_img, -1, -1, -1, -1).gather(3, best[..., None, None].expand(-1, -1, -1, 1, 2))[..., 0, :]
    out = {"da": da, "offsets": off, "positions": mu + o_hat, "score": da.gather(-1, best[..., None])[..., 0],
           "rank": da.sum(-1)}  # fmt: skip
    if with_q:
        tau = params.tau_rate * d.sum(-1).mean((1, 2))  # per image: mean prior mass over the layer's nodes
        out["q"] = d / (competition(mu, cand, r, sigma_par, lam) + tau.view(-1, 1, 1, 1)).clamp_min(1e-7) * a
    return out


def m_step(layer: GraphLayer, q_sum: torch.Tensor, da_sum: torch.Tensor, offsets: torch.Tensor,
           sigma_par: torch.Tensor, t: int, params: GraphParams) -> None:  # fmt: skip
    """Update centres and deformation scales in place from Σ_I q and Σ_I D·A (C×N×G² each)
    (docs/papers.md §4.2, the release's ``updateModel``)."""
    mean_off = (q_sum[..., None] * offsets).sum(2) / q_sum.sum(2).clamp_min(1e-8)[..., None]
    sigma_min = sigma_par.min() / t**0.25
    layer.centers = layer.centers + (sigma_min**2 / sigma_par**2)[..., None] * mean_off
    if params.clamp_centres:
        h, w = layer.size
        layer.centers[..., 0].clamp_(0, h - 1)
        layer.centers[..., 1].clamp_(0, w - 1)
    total = da_sum.sum(2)
    var = (da_sum * offsets.pow(2).sum(-1)).sum(2) / total.clamp_min(1e-30)
    sigma_max = 1 / math.sqrt(params.density)  # a node with no mass gets σ_min, as MATLAB's max ignores NaN
    layer.sigma = torch.where(total > 0, var, torch.zeros_like(var)).sqrt().clamp(sigma_max / 10, sigma_max)


def _parent_scale(layer: GraphLayer, upper: GraphLayer, params: GraphParams) -> float:
    return upper.stride / layer.stride if params.parent_units == "child" else 1.0


def parent_sigma(layer: GraphLayer, upper: GraphLayer, params: GraphParams) -> torch.Tensor:
    """σ_par (C×N): the harmonic mean of the parents' σ² (in the child's units unless faithful)."""
    c, n, m = layer.parents.shape
    s_up = upper.sigma.flatten()[layer.parents.flatten()].view(c, n, m) * _parent_scale(layer, upper, params)
    return (1 / (m * s_up**2)).sum(2).rsqrt()


def parent_shift(layer: GraphLayer, upper: GraphLayer, up_delta: torch.Tensor,
                 params: GraphParams) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Δ_V (I×C×N×2) and log λ_V (I×C×N) from the parents' displacements ``up_delta`` (I×U×2,
    parent map units); λ is absolute, as in the release: σ_par Π_U σ_U⁻¹ exp(−‖Δ−δ_U‖²/2Mσ_U²)."""
    scale = _parent_scale(layer, upper, params)
    c, n, m = layer.parents.shape
    idx = layer.parents.flatten()
    d_up = up_delta[:, idx].view(-1, c, n, m, 2) * scale  # I×C×N×M×2
    s_up = upper.sigma.flatten()[idx].view(c, n, m) * scale
    wgt = 1 / (m * s_up**2)
    shift = (wgt[None, ..., None] * d_up).sum(3) / wgt.sum(2)[None, ..., None]
    sigma_par = wgt.sum(2).rsqrt()
    misfit = ((shift[:, :, :, None] - d_up).pow(2).sum(-1) / (2 * m * s_up[None] ** 2)).sum(3)
    return shift, sigma_par.log()[None] - s_up.log().sum(2)[None] - misfit


def _delta(positions: torch.Tensor, mean: torch.Tensor | None = None) -> torch.Tensor:
    """Displacement of each node from its mean position (over these images unless ``mean``)."""
    return positions - (positions.mean(0, keepdim=True) if mean is None else mean[None])


def parent_candidates(upper: GraphLayer, params: GraphParams) -> torch.Tensor:
    """Indices of the upper nodes eligible as parents (docs/papers.md §4.2 "Parent selection" 1–2):
    not among the ⌈50 %⌉ least mobile, mean position not within 10 % of the border (1-based, as
    the release, on the parent's own map), the ``candidates`` largest by Σ_I T_U, in that order."""
    up_pos = upper.frame_positions.flatten(1, 2)  # I×U×2
    var = up_pos.var(0).sum(-1)
    mean = up_pos.mean(0) + 1  # 1-based like the release
    keep = torch.ones_like(var, dtype=torch.bool)
    keep[var.argsort(stable=True)[: math.ceil(var.numel() * params.min_var_rate)]] = False
    size = torch.tensor(upper.size, dtype=mean.dtype, device=mean.device)
    keep &= ((size / 2 - (size / 2 - mean).abs()) >= params.edge_cut * size).all(-1)
    if int(keep.sum()) < params.parents:  # tiny graphs: fall back to all upper nodes
        keep = torch.ones_like(keep)
    order = upper.ranking.flatten(1).sum(0).argsort(descending=True, stable=True)
    return order[keep[order]][: params.candidates]


def select_parents(layer: GraphLayer, upper: GraphLayer, params: GraphParams) -> torch.Tensor:
    """C×N×M parent indices: per node, the candidates maximising Σ_I S_V exp(−‖δ_V − δ_U‖²/2κ_V)
    with displacements in pixels and κ_V the node's own mean squared difference (the release's
    per-node width). Runs in node × image chunks: memory does not grow with nodes × images."""
    cand = parent_candidates(upper, params)
    b = _delta(upper.frame_positions.flatten(1, 2)[:, cand]) * upper.stride  # I×K×2 pixels
    pos = layer.frame_positions.flatten(1, 2)  # I×V×2 map units (a view)
    mean = pos.mean(0)
    s = layer.scores.flatten(1)  # I×V
    n_img, n_nodes = s.shape
    k = b.shape[1]
    m = min(params.parents, k)
    b_mean, b_sq = b.mean(1), b.pow(2).sum(-1).mean(1)  # I×2, I: for κ_V without the I×V×K tensor
    elems = int(params.chunk_mb * 2**20) // (4 * 4)  # ≈ 4 live float32 temporaries of img × nodes × K
    ic = max(1, min(n_img, 64, elems // k))
    vc = max(1, elems // (ic * k))
    top = torch.empty(n_nodes, m, dtype=torch.long, device=s.device)
    for v0 in range(0, n_nodes, vc):
        av = (pos[:, v0 : v0 + vc] - mean[v0 : v0 + vc]) * layer.stride  # I×v×2 pixels
        kappa = (av.pow(2).sum(-1) - 2 * (av * b_mean[:, None]).sum(-1) + b_sq[:, None]).mean(0).clamp_min(1e-12)
        gains = torch.zeros(av.shape[1], 1, k, dtype=av.dtype, device=av.device)
        for i0 in range(0, n_img, ic):
            ai, bi = av[i0 : i0 + ic].transpose(0, 1), b[i0 : i0 + ic]  # v×i×2, i×K×2
            d2 = (ai[..., 0, None] - bi[None, ..., 0]).pow_(2)
            d2 += (ai[..., 1, None] - bi[None, ..., 1]).pow_(2)  # v×i×K
            d2.div_(-2 * kappa[:, None, None]).exp_()
            gains += torch.bmm(s[i0 : i0 + ic, v0 : v0 + vc].T[:, None], d2)
        top[v0 : v0 + vc] = gains[:, 0].argsort(dim=1, descending=True, stable=True)[:, :m]
    c, n = layer.centers.shape[:2]
    return cand[top].view(c, n, -1)


def _as_float(t: torch.Tensor) -> torch.Tensor:
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def _chunk_images(c: int, n: int, params: GraphParams) -> int:
    """Images per E-step chunk: ≈ 16 live C×N×G² and 8 C×N×G×N temporaries per image."""
    g = params.grid
    per_image = 4 * c * n * (16 * g * g + 8 * g * n)
    return max(1, int(params.chunk_mb * 2**20) // per_image)


def _e_pass(maps: torch.Tensor, mirror: torch.Tensor | None, flipped: torch.Tensor | None, layer: GraphLayer,
            params: GraphParams, sigma_par: torch.Tensor, upper: GraphLayer | None = None,
            up_delta: torch.Tensor | None = None, stats: bool = False) -> dict:  # fmt: skip
    """The E-step over all images, in chunks: positions, S, T and, with ``stats``, Σ_I q and
    Σ_I D·A. With ``mirror``, image i is read from ``mirror`` where ``flipped[i]``."""
    n_img, c, h, _ = maps.shape
    n = layer.nodes_per_filter
    if mirror is not None and flipped is None:
        raise ValueError("mirror maps need the orientation of each image (flipped)")
    chunk = _chunk_images(c, n, params)
    out = {"positions": [], "score": [], "rank": []}
    q_sum = da_sum = offsets = None
    for i0 in range(0, n_img, chunk):
        sl = slice(i0, min(i0 + chunk, n_img))
        if upper is not None:
            shift, log_lam = parent_shift(layer, upper, up_delta[sl], params)
        else:
            shift = layer.centers.new_zeros(sl.stop - i0, c, n, 2)
            log_lam = layer.centers.new_zeros(sl.stop - i0, c, n)
        m = maps[sl] if mirror is None else torch.where(flipped[sl].view(-1, 1, 1, 1), mirror[sl], maps[sl])
        est = e_step(smooth_maps(_as_float(m), params.map_sigma * h), layer, shift, log_lam, sigma_par, params,
                     with_q=stats)  # fmt: skip
        for k in out:
            out[k].append(est[k])
        if stats:
            q, da = est["q"].sum(0), est["da"].sum(0)
            q_sum, da_sum = (q, da) if q_sum is None else (q_sum + q, da_sum + da)
            offsets = est["offsets"]
    result = {k: torch.cat(v) for k, v in out.items()}
    return result | {"flipped": flipped if mirror is not None else None, "q_sum": q_sum, "da_sum": da_sum,
                     "offsets": offsets}  # fmt: skip


def _check_mirror(maps: torch.Tensor, mirror: torch.Tensor | None, upper: GraphLayer | None) -> None:
    if mirror is not None and mirror.shape != maps.shape:
        raise ValueError(f"mirror maps {tuple(mirror.shape)} do not match the maps {tuple(maps.shape)}")
    if upper is not None and (upper.flipped is not None) != (mirror is not None):
        raise ValueError("pass mirror maps to every layer or to none (the layer above was learned "
                         + ("with" if upper.flipped is not None else "without") + " them)")  # fmt: skip


def align_orientation(maps: torch.Tensor, mirror: torch.Tensor, iterations: int = 20):
    """Congealing on the top layer's maps: read each image as is or mirrored so that all agree with
    a common reference, which starts as the first image and becomes the mean of the chosen maps;
    each image takes the orientation of larger cosine similarity. Returns (flipped I bool,
    reference C×h×w)."""
    a = F.normalize(_as_float(maps).flatten(1), dim=1)
    b = F.normalize(_as_float(mirror).flatten(1), dim=1)
    flipped = torch.zeros(len(a), dtype=torch.bool, device=a.device)
    ref = a[0]
    for _ in range(iterations):
        new = b @ ref > a @ ref
        done = torch.equal(new, flipped)
        flipped = new
        ref = torch.where(flipped[:, None], b, a).mean(0)
        if done:
            break
    return flipped, ref.view(maps.shape[1:])


def orientation(maps: torch.Tensor, mirror: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """I bool: whether each image's mirror is closer (cosine) to the learned ``reference``."""
    a = F.normalize(_as_float(maps).flatten(1), dim=1)
    b = F.normalize(_as_float(mirror).flatten(1), dim=1)
    ref = reference.flatten().to(a)
    return b @ ref > a @ ref


def _record(layer: GraphLayer, est: dict, rank_scale: float | None = None) -> None:
    layer.frame_positions, layer.scores, layer.flipped = est["positions"], est["score"], est["flipped"]
    scale = float(est["rank"].mean().clamp_min(1e-30)) if rank_scale is None else rank_scale
    layer.ranking = est["rank"] / scale


def learn_layer(maps: torch.Tensor, layer: GraphLayer, params: GraphParams, upper: GraphLayer | None = None, *,
                mirror: torch.Tensor | None = None, progress: bool = True) -> GraphLayer:  # fmt: skip
    """EM for one graph layer on I×C×h×w maps (rectified, normalised), top-down after ``upper``.
    ``mirror``: the same layer's maps of the mirrored images (left/right handling)."""
    _check_mirror(maps, mirror, upper)
    dtype = torch.float64 if maps.dtype == torch.float64 else torch.float32
    layer.centers, layer.sigma = layer.centers.to(maps.device, dtype), layer.sigma.to(maps.device, dtype)
    flipped = upper.flipped if upper is not None else None
    if upper is None and mirror is not None:
        flipped, layer.reference = align_orientation(maps, mirror)
    up_delta = _delta(upper.frame_positions).flatten(1, 2) if upper is not None else None
    free = torch.full(layer.sigma.shape, params.init_sigma * layer.size[0], device=maps.device, dtype=dtype)
    sigma_par, with_parents = free, False
    for t in tqdm(range(1, params.iterations + 1), desc=f"graph {layer.name}", disable=not progress, leave=False):
        with_parents = upper is not None and t > 1
        if with_parents:
            layer.parents = select_parents(layer, upper, params)
            sigma_par = parent_sigma(layer, upper, params)
        est = _e_pass(maps, mirror, flipped, layer, params, sigma_par, upper if with_parents else None, up_delta,
                      stats=True)  # fmt: skip
        _record(layer, est)
        m_step(layer, est["q_sum"], est["da_sum"], est["offsets"], sigma_par, t, params)
        layer.history.append(float(est["q_sum"].sum()))
    # final inference with the learned parameters (the release keeps the last E-step's, before its M-step)
    est = _e_pass(maps, mirror, flipped, layer, params, sigma_par, upper if with_parents else None, up_delta)
    layer.rank_scale = float(est["rank"].mean().clamp_min(1e-30))
    _record(layer, est, layer.rank_scale)
    layer.mean_position = layer.frame_positions.mean(0)
    layer.params = params
    return layer


def infer(graph: dict[str, GraphLayer], maps: dict[str, torch.Tensor],
          mirror: dict[str, torch.Tensor] | None = None) -> dict[str, Inference]:  # fmt: skip
    """Each node's position and scores on new images, top-down with the learned parameters; the
    parents' displacements are taken from their *training* mean positions. With ``mirror`` (the
    maps of the mirrored images) each image's orientation is chosen at the top layer."""
    out: dict[str, Inference] = {}
    upper = None
    for name in reversed(list(graph)):
        layer, m = graph[name], maps[name]
        params = layer.params
        mm = mirror[name] if mirror is not None else None
        if upper is not None:
            flipped = out[upper.name].flipped
        elif mm is not None:
            if layer.reference is None:
                raise ValueError("this graph was learned without mirror maps; call infer without mirror=")
            flipped = orientation(m, mm, layer.reference)
        else:
            flipped = None
        if layer.parents is not None and upper is not None:
            up_delta = _delta(out[upper.name].frame_positions, upper.mean_position).flatten(1, 2)
            est = _e_pass(m, mm, flipped, layer, params, parent_sigma(layer, upper, params), upper, up_delta)
        else:
            free = torch.full(layer.sigma.shape, params.init_sigma * layer.size[0], device=m.device,
                              dtype=layer.sigma.dtype)  # fmt: skip
            est = _e_pass(m, mm, flipped, layer, params, free)
        out[name] = Inference(est["positions"], est["flipped"], est["score"], est["rank"] / layer.rank_scale,
                              layer.size[1])  # fmt: skip
        upper = layer
    return {name: out[name] for name in graph}


def memory_estimate(shapes: dict[str, tuple[int, ...]], densities: dict[str, float], *, mirror: bool = False,
                    chunk_mb: float = 32) -> int:  # fmt: skip
    """Bytes :func:`learn_graph` needs beyond the maps themselves: per layer the positions, scores
    and rankings of every node on every image (float32), the upper layer's displacements, and the
    chunked temporaries of the E-step (both orientations) and of parent selection."""
    total = 0
    for name, (i, c, h, w) in shapes.items():
        n = math.ceil(densities[name] * h * w)
        total += 4 * i * c * n * 6  # frame positions (2), scores, rankings, displacements as a parent (2)
    return total + 2 * chunk_mb * 2**20 + 64 * 2**20  # + interpreter slack


def available_memory(device: torch.device | str = "cpu") -> int | None:
    """Free memory on ``device`` in bytes (Linux MemAvailable for the CPU), None if unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _warn_if_short(need: int, device) -> None:
    free = available_memory(device)
    if free is not None and need > free:
        warnings.warn(f"the explanatory graph needs about {need / 2**30:.1f} GiB beyond its maps but only "
                      f"{free / 2**30:.1f} GiB is free on {device}: use fewer images, a smaller chunk_mb, or "
                      "a machine with more memory", RuntimeWarning, stacklevel=3)  # fmt: skip


_TENSORS = (
    "centers",
    "sigma",
    "parents",
    "frame_positions",
    "flipped",
    "scores",
    "ranking",
    "mean_position",
    "reference",
)


def _layer_state(layer: GraphLayer) -> dict:
    state = {k: getattr(layer, k) for k in _TENSORS}
    state |= {"name": layer.name, "size": list(layer.size), "stride": layer.stride, "rank_scale": layer.rank_scale,
              "params": json_dumps(asdict(layer.params)), "history": torch.tensor(layer.history)}  # fmt: skip
    return state


def _layer_from_state(state: dict) -> GraphLayer:
    layer = GraphLayer(state["name"], tuple(state["size"]), state["stride"], state["centers"], state["sigma"])
    for k in _TENSORS[2:]:
        setattr(layer, k, state[k])
    layer.rank_scale, layer.params = state["rank_scale"], GraphParams(**json.loads(state["params"]))
    layer.history = state["history"].tolist()
    return layer


def json_dumps(obj) -> str:
    return json.dumps(obj, sort_keys=True)


def save_graph(graph: dict[str, GraphLayer], path) -> None:
    """Write a learned graph atomically (tensors and parameters; ``torch.load(weights_only=True)``)."""
    from ..io import atomic_torch_save

    atomic_torch_save({"layers": [_layer_state(graph[n]) for n in graph]}, path)


def load_graph(path) -> dict[str, GraphLayer]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    layers = [_layer_from_state(s) for s in state["layers"]]
    return {layer.name: layer for layer in layers}


def learn_graph(maps: dict[str, torch.Tensor], strides: dict[str, float], densities: dict[str, float], *,
                mirror: dict[str, torch.Tensor] | None = None, faithful: bool = False, seed: int = 0,
                progress: bool = True, checkpoint_dir=None, **overrides) -> dict[str, GraphLayer]:  # fmt: skip
    """Learn the graph top-down. ``maps`` is ordered from the lowest to the top layer (as a network
    computes them); each I×C×h×w. ``mirror``: the maps of the mirrored images, same keys and shapes
    (left/right handling). ``faithful``: the release's choices (:data:`FAITHFUL`). ``overrides`` set
    :class:`GraphParams` fields. Returns the layers, lowest first.

    With ``checkpoint_dir`` each finished layer is saved, and a rerun resumes after the last
    finished layer when the maps and settings are the same (their fingerprint is checked; another
    computation's checkpoint is refused with a message and relearned). Warns first if the run
    will not fit in memory (:func:`memory_estimate`)."""
    gen = torch.Generator().manual_seed(seed)
    names = list(maps)
    settings = {**FAITHFUL, **overrides} if faithful else dict(overrides)
    shapes = {n: tuple(m.shape) for n, m in maps.items()}
    chunk_mb = settings.get("chunk_mb", GraphParams.chunk_mb)
    _warn_if_short(memory_estimate(shapes, densities, mirror=mirror is not None, chunk_mb=chunk_mb),
                   next(iter(maps.values())).device)  # fmt: skip
    # what determines each layer's result: the exact maps (also the mirrored ones) and every setting
    fp = fingerprint(maps={n: tensor_digest(m) for n, m in maps.items()},
                     mirror={n: tensor_digest(m) for n, m in (mirror or {}).items()},
                     strides=strides, settings={"seed": seed, "densities": densities, **settings})  # fmt: skip
    learned: dict[str, GraphLayer] = {}
    upper = None
    for name in reversed(names):
        params = GraphParams(density=densities[name], **settings)
        m = maps[name]
        layer = init_layer(name, tuple(m.shape[-2:]), m.shape[1], strides[name], params, gen)
        ck = Path(checkpoint_dir) / f"graph_{name}.pt" if checkpoint_dir is not None else None
        state = load_checkpoint(ck, fp, what="graph checkpoint") if ck is not None else None
        if state is not None:
            upper = learned[name] = _layer_from_state(state["layer"])
            continue
        mm = mirror[name] if mirror is not None else None
        upper = learned[name] = learn_layer(m, layer, params, upper, mirror=mm, progress=progress)
        if ck is not None:
            save_checkpoint(ck, {"layer": _layer_state(upper)}, fp)
    return {name: learned[name] for name in names}


def init_layer(name: str, size: tuple[int, int], channels: int, stride: float, params: GraphParams,
               generator: torch.Generator) -> GraphLayer:  # fmt: skip
    """N distinct random unit positions per filter, σ = 0.15 h (the release's `initializeModel`)."""
    h, w = size
    n = math.ceil(params.density * h * w)  # ≤ h·w: GraphParams keeps ρ ≤ 1
    idx = torch.stack([torch.randperm(h * w, generator=generator)[:n] for _ in range(channels)])
    centers = torch.stack([idx // w, idx % w], -1).float()
    sigma = torch.full((channels, n), params.init_sigma * h)
    return GraphLayer(name, (h, w), stride, centers, sigma)


def location_instability(positions: torch.Tensor, landmarks: torch.Tensor, diagonal: float) -> float:
    """Zhang et al.'s metric for one node or filter (docs/papers.md §4.3): over the images given
    (its top-K), the standard deviation (unbiased, as MATLAB's ``var``) of the distance between the
    inferred position and each landmark, divided by the image diagonal, averaged over landmarks.

    ``positions`` I×2 image pixels; ``landmarks`` I×K×2 with NaN where a landmark is missing (those
    images are dropped for that landmark)."""
    values = []
    for k in range(landmarks.shape[1]):
        ok = ~torch.isnan(landmarks[:, k]).any(-1)
        if int(ok.sum()) < 2:
            continue
        d = (positions[ok] - landmarks[ok, k]).norm(dim=-1) / diagonal
        values.append(float(d.std(unbiased=True)))
    return sum(values) / len(values) if values else float("nan")


def planted_maps(n_images: int, *, size: int = 128, parts: int = 4, jitter: float = 2.0, shift: float = 12.0,
                 noise_peaks: int = 2, mirror_rate: float = 0.0, seed: int = 0) -> dict:  # fmt: skip
    """Synthetic feature maps with planted part patterns, for tests and the notebook's warm-up.

    An "object" of ``parts`` parts (fixed layout, whole-object shift ±``shift`` px and per-part
    jitter σ = ``jitter`` px per image), mirrored left/right in a fraction ``mirror_rate`` of the
    images. Lower layer (stride 8): 2·parts filters, filter 2p fires at part p and filter 2p+1 at
    parts p and p+1 (a mixture, as ZF and Zhang et al. describe real filters); upper layer
    (stride 16): one filter per part. Every filter also fires at ``noise_peaks`` random places.
    Returns maps, ``mirror`` (the maps of each scene mirrored: here exactly the flipped maps),
    ``mirrored`` (I bool), strides and the true part positions (pixels, y x, in each image)."""
    g = torch.Generator().manual_seed(seed)
    layout = torch.tensor([[0.3, 0.3], [0.3, 0.7], [0.7, 0.3], [0.7, 0.7], [0.5, 0.5]])[:parts] * size
    obj = (torch.rand(n_images, 1, 2, generator=g) * 2 - 1) * shift
    truth = layout[None] + obj + torch.randn(n_images, parts, 2, generator=g) * jitter  # I×P×2
    mirrored = torch.zeros(n_images, dtype=torch.bool)
    if mirror_rate > 0:  # drawn only then, so that mirror_rate=0 keeps the earlier maps
        mirrored = torch.rand(n_images, generator=g) < mirror_rate
        truth[mirrored, :, 1] = size - truth[mirrored, :, 1]

    def render(stride, assign):
        h = size // stride
        yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(h).float(), indexing="ij")
        maps = torch.zeros(n_images, len(assign), h, h)
        for c, ps in enumerate(assign):
            pts = [truth[:, p] / stride - 0.5 for p in ps]
            amps = [torch.ones(n_images) for _ in ps]
            for _ in range(noise_peaks):
                pts.append(torch.rand(n_images, 2, generator=g) * (h - 1))
                amps.append(0.4 + 0.6 * torch.rand(n_images, generator=g))
            for pt, a in zip(pts, amps):
                d2 = (yy[None] - pt[:, :1, None]) ** 2 + (xx[None] - pt[:, 1:, None]) ** 2
                maps[:, c] += a[:, None, None] * torch.exp(-d2 / (2 * 0.8**2))
        return maps + 0.02 * torch.rand(maps.shape, generator=g)

    lower = [[p] for p in range(parts)] + [[p, (p + 1) % parts] for p in range(parts)]
    maps = {"lower": render(8, lower), "upper": render(16, [[p] for p in range(parts)])}
    return {"maps": maps, "mirror": {k: m.flip(-1) for k, m in maps.items()}, "mirrored": mirrored,
            "strides": {"lower": 8.0, "upper": 16.0}, "truth": truth,
            "filters": {"lower": lower, "upper": [[p] for p in range(parts)]}}  # fmt: skip


def unit_to_pixel(positions: torch.Tensor, stride: float) -> torch.Tensor:
    """Map coordinates → input pixels (centre of the unit's stride cell)."""
    return (positions + 0.5) * stride
