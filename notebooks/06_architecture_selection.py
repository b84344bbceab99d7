# %% [markdown]
# # 06 · Architecture selection by visualisation (ZF §4.1, Fig. 6)
#
# Looking at Krizhevsky's network, ZF saw that its first layer (11×11 filters, stride 4) mixes
# "extremely high and low frequency information, with little coverage of the mid frequencies", has
# "dead" features, and that its layer-2 projections show "aliasing artifacts caused by the large
# stride 4". Shrinking the first layer to 7×7 with stride 2 fixed both. They also show the first
# layer trained *without* their filter-RMS renormalisation, where "one feature dominates".
#
# Here all three are trained the same way on the same data (`zfhelpers.models.trained`: Fashion-MNIST,
# 20 000 images, 10 epochs) and compared by picture **and by number**:
#
# | panel | twin | first layer | RMS renormalisation |
# |---|---|---|---|
# | (a) | `zf_norenorm` | 7×7 / 2 | off |
# | (b) | `alexnet` | 11×11 / 4 | on |
# | (c) | `zf` | 7×7 / 2 | on |
#
# **Caveat of the stand-in data.** Fashion-MNIST is 28×28, upsampled 4× to 112 px, so the images
# hold no content above 1/8 cycle/pixel. Filter or projection power above that cut-off cannot come
# from the data: it is left-over initial noise or an artefact of the stride. Filters are shown as
# their sum over the three input channels (the images are grey).

# %% tags=["parameters"]
profile = "offline"  # the twins are trained here on either profile
n_images = 2000  # test images scanned for dead units and layer-2 projections
n_channels = 4  # layer-2 feature maps shown per twin
dead_threshold = 0.05  # a unit is dead if its max activation is below this share of the layer median
seed = 0
dpi = 100  # resolution of saved figures
interactive = True  # widget explorer (papermill sets False)

# %%
import matplotlib.pyplot as plt
import torch

import zfhelpers
from zfhelpers.analysis import scan, top9
from zfhelpers.analysis import spectra as architecture
from zfhelpers.data import scansets as datasets
from zfhelpers.models import trained
from zfhelpers.notebook import plots as viz
from zfhelpers.notebook import widgets

zfhelpers.notebook.setup(seed=seed)
variants = {"a": "zf_norenorm", "b": "alexnet", "c": "zf"}
twins = {v: trained.load_twin(v) for v in variants.values()}
data = datasets.load_scan_set("fashion_test", twins["zf"], n_images)
DATA_CUTOFF = 0.125  # cycles/pixel: Nyquist of the 28 px originals after 4x upsampling
stamp = dict(model=", ".join(lm.name for lm in twins.values()) + " (trained here)", data=data.description)
for lm in twins.values():
    print(f"{lm.label}")

# %% [markdown]
# ## Fig. 6 (a)–(c): first-layer filters
# Each filter scaled symmetrically about zero (grey = 0). Under each panel: the RMS of every filter,
# which ZF's renormalisation caps at 0.1 — without it, watch for one filter outgrowing the rest.
#
# **Finding: at this scale the cap never binds.** ZF needed it because their input was raw pixels
# ("roughly [−128, 128]"), which makes layer-1 gradients and filters large. Our input is normalised
# to unit variance, and no filter of any layer ever exceeds RMS 0.1 during training (the largest
# ends at 0.067), so (a) and (c) are the *same network*, bit for bit (checked below). We tried the
# raw-pixel regime too: with this init and learning rate both variants diverge (NaN) within the
# first epoch, with or without the cap. So panel (a) cannot show ZF's "one feature dominates" here.

# %%
# NBVAL_CHECK_OUTPUT
a, c = twins["zf_norenorm"].model.state_dict(), twins["zf"].model.state_dict()
print("largest |zf_norenorm - zf| weight difference:", max(float((a[k] - c[k]).abs().max()) for k in a))
for v, lm in twins.items():
    rms = [float(architecture.filter_rms(m.weight).max()) for m in lm.model.features if isinstance(m, torch.nn.Conv2d)]
    print(f"{v:12} largest filter RMS per conv layer: {', '.join(f'{r:.3f}' for r in rms)} (cap 0.1)")

# %%
fig = plt.figure(figsize=(13, 5.2))
grid = fig.add_gridspec(2, 3, height_ratios=[3, 1.3])
for j, (panel, v) in enumerate(variants.items()):
    w = twins[v].conv_weight("conv1")
    g = architecture.grey_filters(w)
    ax = fig.add_subplot(grid[0, j])
    viz.plot_rgb_filters(g[:, None].expand(-1, 3, -1, -1), ncols=6, ax=ax,
                         title=f"({panel}) {v}: {w.shape[0]} filters {w.shape[2]}x{w.shape[3]}, stride "
                               f"{twins[v].model.features[0].stride[0]}")  # fmt: skip
    ax2 = fig.add_subplot(grid[1, j])
    rms = architecture.filter_rms(w)
    ax2.bar(range(len(rms)), rms.numpy(), color="tab:blue")
    ax2.axhline(0.1, color="red", lw=0.8, ls=":")
    ax2.set_title(f"filter RMS (max/median {float(rms.max() / rms.median()):.1f})", fontsize=8)
    ax2.tick_params(labelsize=7)
fig.tight_layout()
zfhelpers.save_figure(fig, "06_layer1_filters_twins", dpi=dpi, **stamp)
plt.show()

# %% [markdown]
# ## Fig. 6 (d)–(e): layer-2 projections, AlexNet-style vs ZF-style
# The same number of randomly chosen layer-2 maps per twin, each with its top-9 test activations
# projected. ZF's complaint about the stride-4 net is a regular grid pattern in these projections.

# %%
g = torch.Generator().manual_seed(seed)
l2 = {}
for v in ("alexnet", "zf"):
    lm = twins[v]
    chans = sorted(torch.randperm(lm.channels("relu2"), generator=g)[:n_channels].tolist())
    top = scan.scan_topk(lm, data.images, layer="relu2", k=9, batch_size=200, prepare=data.prepare, progress=False)
    l2[v] = top9.project_topk(lm, top, chans, data.images, prepare=data.prepare, grey=True)
for panel, v in (("d", "alexnet"), ("e", "zf")):
    fig = viz.plot_top9([l2[v]], title=f"({panel}) layer-2 projections of the {v} twin")
    zfhelpers.save_figure(fig, f"06_layer2_projections_{v}", dpi=dpi, **stamp)
    plt.show()

# %% [markdown]
# ## Quantified
# * **test accuracy** after the same training;
# * **dead units** in layer 1: largest activation over the scanned images below `dead_threshold` of
#   the layer's median;
# * **RMS max/median** of the layer-1 filters (one dominating feature shows as a large ratio);
# * **spectral peaks**: share of layer-1 filters whose power spectrum peaks in the low (< 1/12),
#   mid (1/12–1/4) and high (> 1/4 cycle/pixel) band — ZF's "coverage of the mid frequencies";
# * **power above the data's band** (> 1/8 cycle/pixel) in the layer-1 filters and in the layer-2
#   projections (mean over maps): power no image content can explain.

# %%
# NBVAL_CHECK_OUTPUT
rows = []
for panel, v in variants.items():
    lm = twins[v]
    w = lm.conv_weight("conv1")
    g = architecture.grey_filters(w)
    top1 = scan.scan_topk(lm, data.images, layer="relu1", k=1, batch_size=200, prepare=data.prepare, progress=False)
    dead = architecture.dead_units(top1.values[:, 0], dead_threshold)
    freqs, spec = architecture.radial_power(g)
    bands = architecture.band_fractions(freqs, spec)
    rms = architecture.filter_rms(w)
    acc = trained.history(v)[-1]["test_accuracy"]
    row = {"twin": f"({panel}) {v}", "test acc": f"{acc:.3f}", "dead L1": f"{int(dead.sum())}/{len(dead)}",
           "RMS max/med": f"{float(rms.max() / rms.median()):.2f}",
           "low/mid/high": "/".join(f"{bands[b]:.2f}" for b in ("low", "mid", "high")),
           "L1 >1/8": f"{float(architecture.energy_above(g, DATA_CUTOFF).mean()):.2f}"}  # fmt: skip
    if v in l2:
        proj = torch.from_numpy(l2[v].projections[..., 0].reshape(-1, *l2[v].projections.shape[2:4]) - 0.5)
        row["L2 proj >1/8"] = f"{float(architecture.energy_above(proj, DATA_CUTOFF).mean()):.2f}"
    else:
        row["L2 proj >1/8"] = "-"
    rows.append(row)
cols = list(rows[0])
print("  ".join(f"{c:>14}" for c in cols))
for row in rows:
    print("  ".join(f"{row[c]:>14}" for c in cols))

# %%
fig, ax = plt.subplots(figsize=(5.5, 3.2))
for v, lm in twins.items():
    freqs, spec = architecture.radial_power(architecture.grey_filters(lm.conv_weight("conv1")))
    ax.semilogy(freqs[1:].numpy(), spec[:, 1:].mean(0).numpy(), label=v)  # DC is removed (mean subtracted)
ax.axvline(DATA_CUTOFF, color="grey", ls=":", lw=0.8)
ax.text(DATA_CUTOFF, ax.get_ylim()[1], " data band limit", fontsize=7, va="top")
ax.set_xlabel("spatial frequency (cycles / input pixel)")
ax.set_ylabel("mean normalised power")
ax.set_title("Radial power spectrum of the layer-1 filters", fontsize=9)
ax.legend(fontsize=8)
fig.tight_layout()
zfhelpers.save_figure(fig, "06_layer1_spectra_twins", dpi=dpi, **stamp)
plt.show()

# %% [markdown]
# **What carries over, measured on the committed twins (full preset).** Accuracy is the same (87.0 %
# for all three). ZF's spectral point holds: 92 % of the ZF twin's layer-1 filters peak in the mid
# band, against 8 % of the AlexNet twin's, whose filters peak low (92 %) and carry visible
# high-frequency noise. Dead units: none in either net at this width (ZF saw them at 96 filters on
# ImageNet). Aliasing: by the power above the data band, the ZF twin's layer-2 projections are *not*
# cleaner (0.06 vs 0.04); both show the stride grid. RMS renormalisation: never triggered here, see
# above, so (a) = (c).
#
# ## Explore (interactive)
# Layer and channel of either twin: its top-9 test activations, projected.

# %% tags=["nbval-ignore-output"]
if interactive:
    import ipywidgets

    def render(layer, channel, twin):
        lm = twins[twin]
        top = scan.scan_topk(lm, data.images, layer=layer, k=9, batch_size=200, prepare=data.prepare, progress=False)
        channel = min(channel, lm.channels(layer) - 1)
        return viz.plot_top9([top9.project_topk(lm, top, [channel], data.images, prepare=data.prepare, grey=True)],
                             title=f"{twin} {layer} channel {channel}")

    spatial = {n: twins["zf"].channels(n) for n in ("relu1", "relu2", "relu3", "relu4", "relu5")}
    explorer = widgets.layer_channel_explorer(render, spatial, layer="relu2",
                                              extra={"twin": ipywidgets.Dropdown(options=list(twins), value="alexnet")})
    display(explorer.ui)
