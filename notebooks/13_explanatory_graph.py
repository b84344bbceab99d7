# %% [markdown]
# # 13 · The explanatory graph (Zhang et al., AAAI 2018)
#
# [← 12 · code_modification_styles](12_code_modification_styles.ipynb) · [index](index.ipynb)
#
# A filter in a mid-level conv layer fires on *several* parts of an object. The explanatory graph
# disentangles each filter into **nodes** (part patterns): every node is a place where the filter
# fires that keeps a stable spatial relation to nodes of the layer above. Learning is unsupervised
# (no part labels), top-down over four conv layers, by EM (`zfhelpers.graph.model`, rebuilt from
# the authors' MATLAB release, docs/papers.md §4.2). The claim to test: *each node consistently
# represents the same object part across images* — measured by **location instability** (how much
# the distance from a node's inferred position to a landmark varies over its top images), nodes
# against raw filters.
#
# **What stands in for the paper's data.** CUB-200, Pascal VOC Part and ILSVRC part annotations
# cannot be had offline. We use a procedural category with exact landmarks,
# `zfhelpers.data.critters` (a body, head with an eye, tail and legs; random position, scale,
# facing and tilt on clutter), and a small VGG-style net trained here to tell critters from clutter
# and scattered parts (`parts_vgg`). Its layers relu3_1, relu3_2 (28×28) and relu4_1, relu4_2
# (14×14) mirror the paper's conv4_2, conv4_3, conv5_2, conv5_3, with the paper's node densities
# (N = 40 and 20 nodes per filter).
#
# **Left and right.** Critters face either way. A node tied to fixed displacements cannot follow a
# mirrored part, so each image is read at the top layer as it is or mirrored (whichever agrees with
# the graph), the choice is carried down, and positions are mirrored back for evaluation. Two
# regimes: critters facing **either way** with this flip handling, and critters all facing **one
# way** (nothing to flip); with `ablation = True` also either way **without** flips.
#
# **What the numbers mean.** Beside nodes and raw filters stand two baselines: the **landmark
# floor** (a unit sitting exactly on one landmark — what the critters' own pose and scale leave for
# a perfect part detector) and a unit that **never moves** (fixed at the image centre). Intervals
# are 95 % bootstrap intervals over test images; p-values come from paired permutation tests over
# layer × landmark cells (instability) or test images (localisation). `faithful = True` switches to
# the release's own unit conventions (parents' displacements in the parent's map units, centres
# free to leave the map).
#
# **Your own category (the paper's setting).** Set `annotations` to a JSON file listing cropped
# object images, their landmarks and optional negative images (format in
# `zfhelpers.graph.evaluate.load_landmark_folder`); the notebook then runs VGG16 (paper profile; or
# any VGG of the zoo via `model`, e.g. the offline `vgg16_hed`) on relu4_2, relu4_3, relu5_2,
# relu5_3 at 224 px, the paper's layers, learning on the first half of the images and testing on
# the rest (with flip handling, one regime).

# %% tags=["parameters"]
profile = "offline"  # the paper profile matters only with annotations {offline, paper}
annotations = ""  # empty means procedural critters, else a landmark JSON file (see above)
model = ""  # with annotations: empty means the zoo's graph model (vgg16 on paper, vgg16_hed offline)
n_images = 40  # critter images the graph is learned on (the full preset uses 100) [10..400]
n_test = 40  # new critter images for inference and evaluation [20..400]
n_negatives = 100  # critter-free images for the per-unit normaliser (the paper uses 1000) [10..2000]
iterations = 3  # EM iterations per layer (the paper and the full preset use 20) [1..50]
top_images = 20  # images per node in the instability metric (the paper's 20) [2..100]
top_units = 50  # nodes (and filters, capped at the layer's filters) evaluated per layer [1..1000]
n_boot = 100  # bootstrap resamples for the intervals (the full preset uses 1000) [50..10000]
faithful = False  # True: the release's unit conventions (see zfhelpers.graph.model)
ablation = False  # also learn critters facing either way *without* flip handling (one more graph)
seed = 0  # [0..]
dpi = 100  # resolution of saved figures [10..600]
interactive = True  # widget explorer (papermill sets False)

# %%
import matplotlib.pyplot as plt

import zfhelpers
import zfhelpers.course
from zfhelpers.claims import table
from zfhelpers.graph import claims
from zfhelpers.graph import evaluate as graph_eval
from zfhelpers.models import trained
from zfhelpers.notebook import graph_figures, widgets

run = zfhelpers.notebook.start("13_explanatory_graph", globals())
if not annotations:
    net = trained.load_twin("parts_vgg")
    layers, densities = list(trained.GRAPH_LAYERS), dict(zip(trained.GRAPH_LAYERS, trained.GRAPH_DENSITIES))
    either = graph_eval.critter_data(n_images, n_test, n_negatives, seed=seed)
    regimes = {"either way, flip handling": (either, True, "either_way")}
    if ablation:
        regimes["either way, no flips"] = (either, False, "either_way_no_flips")
    one_way = graph_eval.critter_data(n_images, n_test, n_negatives, facing="left", seed=seed)
    regimes["one way"] = (one_way, False, "one_way")
else:
    net = zfhelpers.load_model(model, profile, task="graph")
    layers = ["relu4_2", "relu4_3", "relu5_2", "relu5_3"]
    densities = dict(zip(layers, trained.GRAPH_DENSITIES))
    regimes = {"your images, flip handling": (graph_eval.folder_data(annotations, net), True, "own")}
print(net.label)

# %% [markdown]
# ## Learning, top-down (progress per layer; each finished layer is checkpointed)

# %%
settings = dict(faithful=faithful, iterations=iterations, top_images=top_images, top_units=top_units,
                n_boot=n_boot, seed=seed, checkpoint_root=zfhelpers.paths.build_dir() / "graphs")  # fmt: skip
studies = {label: graph_eval.run_study(net, layers, data, densities, flip=flip, **settings)
           for label, (data, flip, _) in regimes.items()}  # fmt: skip
first = next(iter(studies))
main, data = studies[first], regimes[first][0]
print(graph_eval.describe_graph(main["graph"]))
stamp = dict(model=net.name, data=main["label"] + ("; faithful" if faithful else ""))
stamp_all = dict(stamp, data=f"procedural critters, {n_images} to learn and {n_test} to test per regime"
                 if not annotations else stamp["data"])  # fmt: skip
run.describe(model=net.label, data="; ".join(dict.fromkeys(st["label"] for st in studies.values())))

# %% [markdown]
# ## Location instability: nodes vs raw filters, beside the floor and a unit that never moves (docs/papers.md §4.3)
# For each unit (a node, or a raw filter's arg-max unit), its top-`top_images` test images by score;
# per landmark, the standard deviation of the distance from the unit to the landmark, divided by the
# image diagonal; mean over the landmarks, over the best `top_units` units per layer, then over the
# layers. Lower = the unit sits at the same place on the object. Bars: 95 % bootstrap intervals;
# the green band is the floor, the red one a unit fixed at the image centre. Under the panels, the
# published raw-filter values of an ordinary VGG-16 (other data and network, for scale only).

# %%
paper = graph_eval.paper_numbers(graph_eval.PAPER_INSTABILITY)
fig = graph_figures.instability_figure({label: st["instability"] for label, st in studies.items()}, layers, paper)
_ = run.save_figure(fig, f"13_instability_{net.name}", dpi=dpi, **stamp_all)
plt.show()

# %% [markdown]
# ### Build it yourself: the metric of one unit
# Write `my_instability(positions, landmarks, diagonal)`: a unit's positions in its top images
# (T×2, x y pixels), the landmarks of those images (T×K×2) and the image diagonal → for each
# landmark the standard deviation over the images of ‖position − landmark‖ / diagonal, then the
# mean over landmarks. *Predict first:* a unit that always sits exactly on the head — is its
# instability zero? (The landmark floor above answers it.) The checker compares your function with
# the package's on random data.

# %%
def my_instability(positions, landmarks, diagonal):
    raise NotImplementedError  # your code here


_ = zfhelpers.course.check("13.location_instability", my_instability)

# %% [markdown]
# ## Top patches of diverse best nodes
# Nodes ranked by the mean of their top-`top_images` ranking scores on the test images; at most one
# node per filter, taken in turn for each landmark (the one the node sits nearest to), so that the
# rows show different filters and parts. For each, its five best test images cropped around the
# inferred position (30 / 40 px at the 28 / 14 layers, the paper's 60 / 80 px at 224). A node that
# stands for one part shows the same part five times. Grey is outside the image.

# %%
# the paper's figure shows conv4_3 and conv5_2
fig = graph_figures.diverse_patches_figure(main, data, layers[1:3], n=6, top_images=top_images)
_ = run.save_figure(fig, f"13_node_patches_{net.name}", dpi=dpi, **stamp)
plt.show()

# %% [markdown]
# ## Heat maps: where the inferred nodes sit on one image
# Every node's inferred position as a Gaussian weighted by its score, per layer (mirrored back on
# images read flipped).

# %%
strides = main["inputs"]["strides"]
fig = graph_figures.heatmaps_figure(data["test"], data["marks_test"], main["inferred"], strides, data["names"])
_ = run.save_figure(fig, f"13_heatmaps_{net.name}", dpi=dpi, **stamp)
plt.show()

# %% [markdown]
# ## 3-shot part localisation
# Three annotated training images pick, per landmark, the five units whose positions (plus a fixed
# offset) predict the landmark best; on the test images the landmark is predicted from those units,
# weighted by their scores. Error: distance / image diagonal (lower is better). Nodes of all four
# layers vs raw filters; the difference is paired over test images. The claims below carry the
# numbers; `graph_eval.format_results(studies[...]["localisation"])` prints every landmark.
#
# ## Claims
# Every measured statement with its interval, test and n, and its verdict against
# `zfhelpers/claims/paper_numbers.yaml` (the rule is in `zfhelpers.graph.claims`: Zhang et al.'s
# own tables could not be retrieved, so their numbers are null there and our values are *not
# comparable*; only the direction the abstract states is judged). The committed notebook shows the
# quick defaults; README and `figures/` hold the full preset (`python -m zfhelpers claims`).

# %%
for c in claims.notebook_claims(studies, {label: rid for label, (_, _, rid) in regimes.items()}):
    run.claim(c)
print(table.text({run.notebook: run.results}))

# %% [markdown]
# ## Explore (interactive)
# Layer and node: the node's six best test images and where it sits. With `interactive = False`, a
# static preview of the opening node.

# %% tags=["nbval-ignore-output"]
per_filter = {name: main["graph"][name].nodes_per_filter for name in layers}
counts = {name: main["graph"][name].centers.shape[0] * per_filter[name] for name in layers}


def render(layer, channel):
    return graph_figures.node_figure(data["test"], main["inferred"], strides, layer, channel, per_filter[layer])


def build():
    ex = widgets.layer_channel_explorer(render, counts, layer=layers[1])
    ex.channel.description = "node"
    return ex


if not interactive:  # a static preview of the opening node
    render(layers[1], 0)
    plt.show()
explorer = widgets.explore(interactive, build)
