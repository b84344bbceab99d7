# %% [markdown]
# # 03 · Top-9 activations over a dataset, projected (ZF §4, Fig. 2)
#
# [← 02 · deconvnet](02_deconvnet.ipynb) · [index](index.ipynb) · [04 · feature_evolution →](04_feature_evolution.ipynb)
#
# For a feature map, ZF scan the validation set, keep the **9 strongest activations** (we keep at
# most one per image, the evident intent, see docs/papers.md §1.4), and project **each one separately**
# to pixel space with the deconvnet — next to the image patch its receptive field covers. Projections
# show *what in the patch* drove the unit; the patches show *how varied* its inputs are.
#
# Two stages: `zfhelpers.analysis.scan.scan_topk` streams the set once per layer (inference mode, a running
# top-k per channel, resumable), then `zfhelpers.analysis.top9.project_topk` re-runs only the 9 winning
# images per channel and projects each winner. Crops are the nominal receptive field from the layer
# geometry (grey where it reaches past the image).
#
# **Model and data (offline).** No ImageNet AlexNet/ZF weights exist offline, so this runs on the
# **ZF-style twin trained here** (`zfhelpers.models.trained`: 7×7/2 conv1, overlapping 3×3/2 max-pools,
# contrast normalisation, five conv layers, RMS renormalisation; 112 px input, quarter widths) on
# **Fashion-MNIST**, grey images replicated to RGB, so projections are shown in grey (their channel
# sum, which is all a grey image can excite). With `profile = "paper"` it runs on torchvision's
# ImageNet AlexNet over Imagenette's validation images (downloaded).

# %% tags=["parameters"]
profile = "offline"  # "offline" (ZF twin, Fashion-MNIST) or "paper" (AlexNet, Imagenette) {offline, paper}
model = ""  # empty means twin_zf offline and alexnet on the paper profile
dataset = (
    ""  # empty means fashion_test offline and imagenette_val on the paper profile; a scan-set name or an image folder
)
n_images = 2000  # images scanned (the full preset scans 10 000) [1..60000]
n_channels = 4  # feature maps shown per layer, a seeded random subset as in ZF [1..8]
layers = ["relu1", "relu2", "relu3", "relu4", "relu5"]  # layers scanned and shown [1..5]
seed = 0  # seed of the feature-map subset [0..1000]
dpi = 100  # resolution of saved figures [50..300]
interactive = True  # widget explorer (papermill sets False)

# %%
import torch

import zfhelpers
from zfhelpers.analysis import scan, top9
from zfhelpers.claims import table
from zfhelpers.data import scansets as datasets
from zfhelpers.models import trained
from zfhelpers.notebook import explorers, widgets
from zfhelpers.notebook import plots as viz

run = zfhelpers.notebook.start("03_top9_projections", globals())
if profile == "offline" and model in ("", "twin_zf"):
    lm = trained.load_twin("zf")
else:
    lm = zfhelpers.load_model(model or "alexnet", profile)
data = datasets.load_scan_set(
    dataset or ("fashion_test" if profile == "offline" else "imagenette_val"), lm, n_images, download=profile == "paper"
)
grey = data.name.startswith("fashion")
stamp = dict(model=lm.label, data=f"top-9 over {len(data)} scanned images: {data.description}")
run.describe(**stamp)
print(lm.label, "|", stamp["data"])

# %% [markdown]
# ## Stage 1: one streaming pass over the images (all layers at once)

# %%
ckpt = zfhelpers.paths.build_dir() / "scans" / f"{lm.name}_{data.name}_{len(data)}_{'-'.join(layers)}.pt"
tops = scan.scan_topk(lm, data.images, layer=layers, k=9, batch_size=200, prepare=data.prepare, checkpoint=ckpt)
for layer in layers:
    print(f"{layer}: {lm.channels(layer)} channels, strongest activation {tops[layer].values.max():.2f}")

# %% [markdown]
# ## Stage 2: project each winner separately; ZF Fig. 2
# Each row is a layer; each pair of blocks is one feature map: its 9 projections (left, grey = 0)
# and the 9 patches (right). The re-projected activation must equal the scanned one — checked below.

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(seed)
chosen = {layer: sorted(torch.randperm(lm.channels(layer), generator=g)[:n_channels].tolist()) for layer in layers}
rows = [top9.project_topk(lm, tops[layer], chosen[layer], data.images, prepare=data.prepare, grey=grey)
        for layer in layers]  # fmt: skip
for tp in rows:
    same = torch.allclose(tp.reprojected, tp.values, rtol=1e-4, atol=1e-5)
    print(
        f"{tp.layer}: channels {tp.channels}, receptive field {tp.projections.shape[2]} px, "
        f"re-projected activations equal the scan's: {same}"
    )

# %%
run.claim(top9.reprojection_claim(rows, model=lm.name, n_images=len(data)))
fig = viz.plot_top9(rows, title=f"Top-9 activations per feature map over {len(data)} images, projected ({lm.name})")
run.save_figure(fig, f"03_top9_{lm.name}", dpi=dpi, **stamp);

# %% [markdown]
# What to look for: layer 1 has the same projection nine times (a single filter times the
# activation) and patches with one edge orientation; layer 2 units pick out corners and bars;
# from layer 3 up the patches group whole garment parts (collars, sleeves, soles, bag handles), and
# the projections show which edges of the garment drove the unit. At this input size a layer-5
# receptive field (139 px) is larger than the 112 px image, so its patches are the whole item.
#
# ## Claims
# The check that the two stages agree, against ZF's Fig. 2 procedure (`python -m zfhelpers claims`
# prints every notebook's).

# %%
print(table.text({"03": run.results}))

# %% [markdown]
# ## Explore (interactive)
# Any layer and channel: its top-9 projections and patches. It opens on the second layer's map
# with the strongest activation (one that fires on the scanned images).

# %% tags=["nbval-ignore-output"]
explorer = widgets.explore(
    interactive,
    lambda: explorers.top9_explorer(lm, tops, data.images, layer=layers[1], prepare=data.prepare, grey=grey),
)
