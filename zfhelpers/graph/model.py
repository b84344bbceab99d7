"""The explanatory graph (Zhang et al., AAAI 2018, arXiv 1708.01785), reconstructed from the
authors' MATLAB code (papers.md §4.2) and vectorised in torch over images, filters and nodes.

Each filter of a graph layer is explained by N = ⌈ρ·h·w⌉ *nodes* (part patterns). A node V has a
prior centre p̄_V (map units), a deformation scale σ_V and, below the top layer, M parents in the
layer above. In an image, the parents' displacements from their own mean positions shift V's
expected position (Δ_V) and their agreement scales its prior (λ_V). Per image and node:

* candidates o: a G×G grid of displacements on [−r_V, r_V]², r_V = round(min(0.15 h, 3σ_V));
* evidence A_V(o): the Gaussian-smoothed (σ_m = 0.025 h) rectified map at μ_V + o;
* prior D_V(o) = λ_V · N(o_y; 0, σ_par) · N(o_x; 0, σ_par);
* competition Z_V(o): the prior mass of all nodes of the same filter at that position, plus the
  background τ = 0.1 × the layer's mean prior mass;
* E-step mass q_V(o) = D/Z · A; inferred position μ_V + argmax_o D·A with score S_V = max D·A;
  ranking score T_V = Σ_o D·A.

M-step: p̄_V moves by the q-weighted mean displacement (times σ_min,t²/σ_par², σ_min,t =
min σ_par / t^{1/4}); σ_V becomes the D·A-weighted RMS displacement, clipped to
[σ_max/10, σ_max] with σ_max = 1/√ρ. Parents (every iteration after the first, below the top):
drop the upper nodes with the least positional variance (50 %) or a mean position within 10 % of
the border, keep the 600 with the largest total T, and give each node the 15 whose displacements
co-vary best with its own (weighted by its scores). Layers are learned top-down, 20 iterations each.

Deliberate differences from the released code, each to keep units consistent:
parents' displacements are rescaled from the parent's map to the child's (the code adds them
unscaled, a factor-2 mismatch between conv5 and conv4); the top layer uses σ_par = 0.15 h throughout
as in the code. Left/right flipping is omitted (a no-op in the released code, §4.2)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..progress import tqdm


@dataclass(frozen=True)
class GraphParams:
    density: float  # ρ: nodes per filter = ⌈ρ h w⌉ (VGG16: 0.05 at conv4, 0.1 at conv5)
    iterations: int = 20
    grid: int = 6
    map_sigma: float = 0.025  # × map height, evidence smoothing
    init_sigma: float = 0.15  # × map height
    tau_rate: float = 0.1
    parents: int = 15
    candidates: int = 600
    min_var_rate: float = 0.5
    edge_cut: float = 0.1


@dataclass
class GraphLayer:
    """One learned layer. Node index = filter × N + node."""

    name: str
    size: tuple[int, int]
    stride: float  # input pixels per map unit
    centers: torch.Tensor  # C×N×2 (y, x), map units
    sigma: torch.Tensor  # C×N
    parents: torch.Tensor | None = None  # C×N×M indices into the upper layer's flattened nodes
    positions: torch.Tensor | None = None  # I×C×N×2 inferred on the training images
    scores: torch.Tensor | None = None  # I×C×N  S_V(I)
    ranking: torch.Tensor | None = None  # I×C×N  T_V(I) / its mean
    mean_position: torch.Tensor | None = None  # C×N×2 over the training images (parents' reference)
    rank_scale: float = 1.0  # mean T_V over training: rankings on new images use the same scale
    params: GraphParams | None = None
    history: list = field(default_factory=list)

    @property
    def nodes_per_filter(self) -> int:
        return self.centers.shape[1]


def _gauss1(d: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return torch.exp(-(d**2) / (2 * sigma**2)) / (math.sqrt(2 * math.pi) * sigma)


def smooth_maps(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian smoothing of I×C×h×w rectified maps (truncated at 3σ) — the evidence A."""
    r = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=maps.dtype, device=maps.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / (math.sqrt(2 * math.pi) * sigma)
    c = maps.shape[1]
    x = F.conv2d(maps.clamp_min(0), k.view(1, 1, -1, 1).expand(c, 1, -1, 1).contiguous(), padding=(r, 0), groups=c)
    return F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1).contiguous(), padding=(0, r), groups=c)


def _offsets(sigma: torch.Tensor, h: int, grid: int) -> torch.Tensor:
    """C×N×G²×2 candidate displacements: mid-points of G bins on [−r, r] per axis."""
    r = torch.round(torch.minimum(torch.full_like(sigma, 0.3 * h / 2), 3 * sigma)).clamp_min(1)
    k = (torch.arange(grid, dtype=sigma.dtype, device=sigma.device) + 0.5) / grid * 2 - 1  # in (−1, 1)
    oy, ox = torch.meshgrid(k, k, indexing="ij")
    base = torch.stack([oy.flatten(), ox.flatten()], -1)  # G²×2
    return base * r[..., None, None]


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


def e_step(evidence: torch.Tensor, layer: GraphLayer, shift: torch.Tensor, lam: torch.Tensor, sigma_par: torch.Tensor,
           params: GraphParams) -> dict[str, torch.Tensor]:  # fmt: skip
    """Inference for every image, filter and node (see the module docstring).

    ``shift`` I×C×N×2 (Δ_V), ``lam`` I×C×N (λ_V), ``sigma_par`` C×N."""
    n_img, c, h, w = evidence.shape
    n = layer.nodes_per_filter
    g2 = params.grid**2
    off = _offsets(layer.sigma, h, params.grid)  # C×N×G²×2
    mu = layer.centers[None] + shift  # I×C×N×2
    pos = mu[:, :, :, None, :] + off[None]  # I×C×N×G²×2
    a = _sample(evidence, pos.reshape(n_img, c, n * g2, 2)).view(n_img, c, n, g2)
    sp = sigma_par[None, :, :, None]
    d = lam[..., None] * _gauss1(off[None, ..., 0], sp) * _gauss1(off[None, ..., 1], sp)  # I×C×N×G²
    d = d.expand(n_img, -1, -1, -1)
    # competition: prior mass of every node of the filter, splatted at rounded absolute positions
    cell = pos.round().long()
    inside = (cell[..., 0] >= 0) & (cell[..., 0] < h) & (cell[..., 1] >= 0) & (cell[..., 1] < w)
    flat = (cell[..., 0].clamp(0, h - 1) * w + cell[..., 1].clamp(0, w - 1)).view(n_img, c, n * g2)
    mass = torch.zeros(n_img, c, h * w, dtype=d.dtype, device=d.device)
    mass.scatter_add_(2, flat, (d * inside).reshape(n_img, c, n * g2))
    tau = params.tau_rate * d.sum(-1).mean((1, 2))  # per image: mean prior mass over the layer's nodes
    z = mass.gather(2, flat).view(n_img, c, n, g2) + tau.view(-1, 1, 1, 1)
    da = d * a
    best = da.argmax(-1)
    o_hat = off[None].expand(n_img, -1, -1, -1, -1).gather(3, best[..., None, None].expand(-1, -1, -1, 1, 2))[..., 0, :]
    return {
        "q": d / z * a, "da": da, "offsets": off, "positions": mu + o_hat,
        "score": da.gather(-1, best[..., None])[..., 0], "rank": da.sum(-1),
    }  # fmt: skip


def m_step(layer: GraphLayer, est: dict[str, torch.Tensor], sigma_par: torch.Tensor, t: int,
           params: GraphParams) -> None:  # fmt: skip
    """Update centres and deformation scales in place (papers.md §4.2, `updateModel`)."""
    q, da, off = est["q"], est["da"], est["offsets"]  # I×C×N×G², C×N×G²×2
    qs = q.sum(0)  # C×N×G²
    mean_off = (qs[..., None] * off).sum(2) / qs.sum(2).clamp_min(1e-12)[..., None]
    sigma_min = sigma_par.min() / t**0.25
    layer.centers = layer.centers + (sigma_min**2 / sigma_par**2)[..., None] * mean_off
    h, w = layer.size
    layer.centers[..., 0].clamp_(0, h - 1)
    layer.centers[..., 1].clamp_(0, w - 1)
    ds = da.sum(0)
    var = (ds * off.pow(2).sum(-1)).sum(2) / ds.sum(2).clamp_min(1e-12)
    sigma_max = 1 / math.sqrt(params.density)
    layer.sigma = var.sqrt().clamp(sigma_max / 10, sigma_max)


def _parent_terms(layer: GraphLayer, upper: GraphLayer, up_delta: torch.Tensor, sigma_par_default: float):
    """Δ_V (I×C×N×2, child map units), λ_V (I×C×N) and σ_par (C×N) from the parents."""
    scale = upper.stride / layer.stride  # parent map units → child map units
    c, n, m = layer.parents.shape
    d_up = up_delta.flatten(1, 2)[:, layer.parents.flatten()].view(-1, c, n, m, 2) * scale  # I×C×N×M×2
    s_up = (upper.sigma.flatten()[layer.parents.flatten()].view(c, n, m) * scale).clamp_min(1e-3)
    wgt = 1 / (m * s_up**2)
    shift = (wgt[None, ..., None] * d_up).sum(3) / wgt.sum(2)[None, ..., None]
    sigma_par = wgt.sum(2).rsqrt()
    log_lam = sigma_par.log()[None] - s_up.log().sum(2)[None] - (
        (shift[:, :, :, None] - d_up).pow(2).sum(-1) / (2 * m * s_up[None] ** 2)).sum(3)  # fmt: skip
    lam = torch.exp(log_lam - log_lam.amax(0, keepdim=True))  # per node: only relative λ across images matters
    return shift, lam, sigma_par


def _delta(positions: torch.Tensor, mean: torch.Tensor | None = None) -> torch.Tensor:
    """Displacement of each node from its mean position (over these images unless ``mean``)."""
    return positions - (positions.mean(0, keepdim=True) if mean is None else mean[None])


def select_parents(layer: GraphLayer, upper: GraphLayer, params: GraphParams) -> torch.Tensor:
    """C×N×M parent indices (papers.md §4.2, "Parent (edge) selection")."""
    up_pos = upper.positions.flatten(1, 2)  # I×U×2
    var = up_pos.var(0).sum(-1)
    mean = up_pos.mean(0)
    h, w = upper.size
    edge = params.edge_cut
    keep = var >= var.quantile(params.min_var_rate)
    keep &= (mean[:, 0] >= edge * h) & (mean[:, 0] <= (1 - edge) * (h - 1))
    keep &= (mean[:, 1] >= edge * w) & (mean[:, 1] <= (1 - edge) * (w - 1))
    if int(keep.sum()) < params.parents:  # tiny graphs: fall back to all upper nodes
        keep = torch.ones_like(keep)
    total = upper.ranking.flatten(1).sum(0)
    cand = keep.nonzero().squeeze(1)
    cand = cand[total[cand].argsort(descending=True)[: params.candidates]]
    d_up = _delta(up_pos[:, cand]) * upper.stride  # I×K×2 pixels
    d_me = _delta(layer.positions.flatten(1, 2)) * layer.stride  # I×V×2 pixels
    s_me = layer.scores.flatten(1)  # I×V
    chunks = []
    for v in range(0, d_me.shape[1], 256):
        diff = (d_me[:, v : v + 256, None] - d_up[:, None]).pow(2).sum(-1)  # I×v×K
        chunks.append(diff)
    mean_d2 = torch.cat(chunks, 1).mean().clamp_min(1e-12)
    gains = torch.cat([(s_me[:, v : v + 256, None] * torch.exp(-c / (2 * mean_d2))).sum(0)
                       for v, c in zip(range(0, d_me.shape[1], 256), chunks)], 0)  # V×K  # fmt: skip
    top = gains.topk(min(params.parents, len(cand)), dim=1).indices
    c, n = layer.centers.shape[:2]
    return cand[top].view(c, n, -1)


def init_layer(name: str, size: tuple[int, int], channels: int, stride: float, params: GraphParams,
               generator: torch.Generator) -> GraphLayer:  # fmt: skip
    """N distinct random unit positions per filter, σ = 0.15 h (the code's `initializeModel`)."""
    h, w = size
    n = math.ceil(params.density * h * w)
    if n > h * w:
        raise ValueError(f"density {params.density} asks for {n} nodes on a {h}x{w} map")
    idx = torch.stack([torch.randperm(h * w, generator=generator)[:n] for _ in range(channels)])
    centers = torch.stack([idx // w, idx % w], -1).float()
    sigma = torch.full((channels, n), params.init_sigma * h)
    return GraphLayer(name, (h, w), stride, centers, sigma)


def learn_layer(maps: torch.Tensor, layer: GraphLayer, params: GraphParams, upper: GraphLayer | None = None, *,
                progress: bool = True) -> GraphLayer:  # fmt: skip
    """EM for one graph layer on I×C×h×w maps (rectified, normalised), top-down after ``upper``."""
    h = layer.size[0]
    dev = maps.device
    layer.centers, layer.sigma = layer.centers.to(dev), layer.sigma.to(dev)
    evidence = smooth_maps(maps.float(), params.map_sigma * h)
    n_img, c = maps.shape[:2]
    n = layer.nodes_per_filter
    default = torch.full((c, n), params.init_sigma * h, device=dev)
    up_delta = _delta(upper.positions) if upper is not None else None
    for t in tqdm(range(1, params.iterations + 1), desc=f"graph {layer.name}", disable=not progress, leave=False):
        if upper is not None and t > 1:
            layer.parents = select_parents(layer, upper, params)
            shift, lam, sigma_par = _parent_terms(layer, upper, up_delta, params.init_sigma * h)
        else:
            shift, lam = torch.zeros(n_img, c, n, 2, device=dev), torch.ones(n_img, c, n, device=dev)
            sigma_par = default
        est = e_step(evidence, layer, shift, lam, sigma_par, params)
        layer.positions, layer.scores = est["positions"], est["score"]
        layer.ranking = est["rank"] / est["rank"].mean().clamp_min(1e-12)
        m_step(layer, est, sigma_par, t, params)
        layer.history.append(float(est["q"].sum()))
    # final inference with the learned parameters
    est = e_step(evidence, layer, shift, lam, sigma_par, params)
    layer.positions, layer.scores = est["positions"], est["score"]
    layer.rank_scale = float(est["rank"].mean().clamp_min(1e-12))
    layer.ranking = est["rank"] / layer.rank_scale
    layer.mean_position = layer.positions.mean(0)
    layer.params = params
    return layer


@dataclass
class Inference:
    positions: torch.Tensor  # I×C×N×2 map units
    scores: torch.Tensor  # I×C×N  S_V
    ranking: torch.Tensor  # I×C×N  T_V on the training scale


def infer(graph: dict[str, GraphLayer], maps: dict[str, torch.Tensor]) -> dict[str, Inference]:
    """Each node's position and scores on new images, top-down with the learned parameters; the
    parents' displacements are taken from their *training* mean positions."""
    out: dict[str, Inference] = {}
    upper_name = None
    for name in reversed(list(graph)):
        layer, m = graph[name], maps[name]
        params = layer.params
        h = layer.size[0]
        evidence = smooth_maps(m.float(), params.map_sigma * h)
        n_img, c = m.shape[:2]
        n = layer.nodes_per_filter
        if layer.parents is not None and upper_name is not None:
            upper = graph[upper_name]
            up_delta = _delta(out[upper_name].positions, upper.mean_position)
            shift, lam, sigma_par = _parent_terms(layer, upper, up_delta, params.init_sigma * h)
        else:
            dev = m.device
            shift, lam = torch.zeros(n_img, c, n, 2, device=dev), torch.ones(n_img, c, n, device=dev)
            sigma_par = torch.full((c, n), params.init_sigma * h, device=dev)
        est = e_step(evidence, layer, shift, lam, sigma_par, params)
        out[name] = Inference(est["positions"], est["score"], est["rank"] / layer.rank_scale)
        upper_name = name
    return {name: out[name] for name in graph}


_TENSORS = ("centers", "sigma", "parents", "positions", "scores", "ranking", "mean_position")


def _layer_state(layer: GraphLayer) -> dict:
    from dataclasses import asdict

    state = {k: getattr(layer, k) for k in _TENSORS}
    state |= {"name": layer.name, "size": list(layer.size), "stride": layer.stride, "rank_scale": layer.rank_scale,
              "params": json_dumps(asdict(layer.params)), "history": torch.tensor(layer.history)}  # fmt: skip
    return state


def _layer_from_state(state: dict) -> GraphLayer:
    import json

    layer = GraphLayer(state["name"], tuple(state["size"]), state["stride"], state["centers"], state["sigma"])
    for k in _TENSORS[2:]:
        setattr(layer, k, state[k])
    layer.rank_scale, layer.params = state["rank_scale"], GraphParams(**json.loads(state["params"]))
    layer.history = state["history"].tolist()
    return layer


def json_dumps(obj) -> str:
    import json

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
                seed: int = 0, progress: bool = True, checkpoint_dir=None,
                **overrides) -> dict[str, GraphLayer]:  # fmt: skip
    """Learn the graph top-down. ``maps`` is ordered from the lowest to the top layer (as a network
    computes them); each I×C×h×w. Returns the layers, lowest first.

    With ``checkpoint_dir`` each finished layer is saved, and a rerun resumes after the last
    finished layer (same maps and settings assumed; the key is checked)."""
    from pathlib import Path

    gen = torch.Generator().manual_seed(seed)
    names = list(maps)
    learned: dict[str, GraphLayer] = {}
    upper = None
    key = json_dumps({"seed": seed, "densities": densities, "overrides": overrides,
                      "shapes": {n: list(m.shape) for n, m in maps.items()},
                      "sums": {n: round(float(m.double().sum()), 3) for n, m in maps.items()}})  # fmt: skip
    for name in reversed(names):
        params = GraphParams(density=densities[name], **overrides)
        m = maps[name]
        layer = init_layer(name, tuple(m.shape[-2:]), m.shape[1], strides[name], params, gen)
        ck = Path(checkpoint_dir) / f"graph_{name}.pt" if checkpoint_dir is not None else None
        if ck is not None and ck.is_file():
            state = torch.load(ck, map_location="cpu", weights_only=True)
            if state["key"] == key:
                upper = learned[name] = _layer_from_state(state["layer"])
                continue
        upper = learned[name] = learn_layer(m, layer, params, upper, progress=progress)
        if ck is not None:
            from ..io import atomic_torch_save

            atomic_torch_save({"key": key, "layer": _layer_state(upper)}, ck)
    return {name: learned[name] for name in names}


def location_instability(positions: torch.Tensor, landmarks: torch.Tensor, diagonal: float) -> float:
    """Zhang et al.'s metric for one node or filter (papers.md §4.3): over the images given
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
                 noise_peaks: int = 2, seed: int = 0) -> dict:  # fmt: skip
    """Synthetic feature maps with planted part patterns, for tests and the notebook's warm-up.

    An "object" of ``parts`` parts (fixed layout, whole-object shift ±``shift`` px and per-part
    jitter σ = ``jitter`` px per image). Lower layer (stride 8): 2·parts filters, filter 2p fires at
    part p and filter 2p+1 at parts p and p+1 (a mixture, as ZF and Zhang et al. describe real
    filters); upper layer (stride 16): one filter per part. Every filter also fires at
    ``noise_peaks`` random places. Returns maps, strides and the true part positions (pixels)."""
    g = torch.Generator().manual_seed(seed)
    layout = torch.tensor([[0.3, 0.3], [0.3, 0.7], [0.7, 0.3], [0.7, 0.7], [0.5, 0.5]])[:parts] * size
    obj = (torch.rand(n_images, 1, 2, generator=g) * 2 - 1) * shift
    truth = layout[None] + obj + torch.randn(n_images, parts, 2, generator=g) * jitter  # I×P×2

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
    return {"maps": {"lower": render(8, lower), "upper": render(16, [[p] for p in range(parts)])},
            "strides": {"lower": 8.0, "upper": 16.0}, "truth": truth,
            "filters": {"lower": lower, "upper": [[p] for p in range(parts)]}}  # fmt: skip


def unit_to_pixel(positions: torch.Tensor, stride: float) -> torch.Tensor:
    """Map coordinates → input pixels (centre of the unit's stride cell)."""
    return (positions + 0.5) * stride
