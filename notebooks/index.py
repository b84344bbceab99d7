# %% [markdown]
# # zfhelpers · course index
#
# A runnable companion to Zeiler & Fergus, *Visualizing and Understanding Convolutional Networks*
# (ECCV 2014), and the papers around it: guided backpropagation (Springenberg et al. 2015), the CAM
# family, Feature Map Inversion (Xia et al. 2016) and the explanatory graph (Zhang et al. 2018).
# One notebook per paper figure or table; each runs top to bottom offline.
#
# ## Learning objectives
# After the session a student can
# 1. say what a unit of a convnet responds to, using three kinds of evidence: its feature map, its
#    strongest dataset patches, and a projection of one activation back to pixels;
# 2. implement the deconvnet, gradient and guided-backprop rules as a backward hook on a ReLU and
#    explain why they differ only there;
# 3. run an occlusion experiment and a class activation map, and say what each can and cannot show;
# 4. check a visualisation method with a sanity test (randomise the weights: does the map change?);
# 5. read a claimed number as a measurement: confidence interval, chance level, verdict against the paper.
#
# ## Prerequisites
# Python and NumPy; PyTorch tensors, `nn.Module` and autograd at the level of "what does
# `loss.backward()` do"; what a convolution, a ReLU and max-pooling compute. No GPU needed.
#
# ## Setup
# `make figures` or `make test` set everything up on a fresh machine; without `make`:
# `pip install -e .` then `python -m zfhelpers setup` (see the README). `make course` runs the route below
# with the `course` preset and prints the seconds each notebook takes.

# %% tags=["parameters"]
profile = "offline"  # recorded only: the index runs no model {offline, paper}
interactive = False  # the index has no explorer

# %% [markdown]
# ## The 90-minute route
# Each stop lists its notebooks, the class minutes, and the objective; every route notebook has at least
# two exercises (a "build it yourself" cell checked against the package, and a prediction before a reveal).
# Instructor notes, timings and discussion questions: `docs/teaching.md`.

# %%
# NBVAL_CHECK_OUTPUT
from zfhelpers.course import route

for stop in route.ROUTE:
    links = " + ".join(stop.notebooks)
    print(f"{links:8} {stop.minutes:3d} min  {stop.topic}\n{'':14}→ {stop.objective}")
print(f"{'':8} {route.ROUTE_MINUTES:3d} min  in all, with 5 min of wrap-up and homework")

# %% [markdown]
# Links: [00 · setup check](00_setup_check.ipynb) · [01 · feature maps and filters](01_feature_maps_and_filters.ipynb)
# · [02 · deconvnet](02_deconvnet.ipynb) · [09 · guided backprop](09_guided_backprop.ipynb)
# · [07 · occlusion](07_occlusion.ipynb) · [10 · CAM](10_cam.ipynb) · [05 · invariance](05_invariance.ipynb)
# · [08 · correspondence](08_correspondence.ipynb) · [11 · feature map inversion](11_feature_map_inversion.ipynb)
#
# ## Exercises in each notebook
# Solutions live in `zfhelpers/course/` and are tested (every solution passes its checker; a typical
# mistake does not). Instructors can hand them out after class.

# %%
# NBVAL_CHECK_OUTPUT
from zfhelpers.course import all_exercises

for ex in sorted(all_exercises().values(), key=lambda e: e.key):
    print(f"{ex.key:28} {ex.title}")

# %% [markdown]
# ## Homework
# 1. Run notebook 03 (top-9 projections, ZF Fig. 2) on the ZF twin and pick a unit whose top-9 patches
#    share an object part but whose projections differ; explain with the receptive field.
# 2. Run notebook 06 (architecture selection, ZF Fig. 6) and argue from its measured numbers whether the
#    smaller first-layer stride helps the twin the way ZF report it helped their network.
# 3. Repeat the sanity check of notebook 09 on a method of your choice from notebook 10.
#
# ## All notebooks
# | # | notebook | paper |
# |---|---|---|
# | 00 | [setup check](00_setup_check.ipynb) | — |
# | 01 | [feature maps and filters](01_feature_maps_and_filters.ipynb) | ZF §4.1, Fig. 6-style filters |
# | 02 | [deconvnet](02_deconvnet.ipynb) | ZF §2.1, Fig. 1 |
# | 03 | [top-9 projections](03_top9_projections.ipynb) | ZF Fig. 2 |
# | 04 | [feature evolution](04_feature_evolution.ipynb) | ZF §4, Fig. 4 |
# | 05 | [invariance](05_invariance.ipynb) | ZF Fig. 5 |
# | 06 | [architecture selection](06_architecture_selection.ipynb) | ZF Fig. 6 |
# | 07 | [occlusion](07_occlusion.ipynb) | ZF Fig. 7 |
# | 08 | [correspondence](08_correspondence.ipynb) | ZF §4.3, Table 1 |
# | 09 | [guided backprop](09_guided_backprop.ipynb) | Springenberg et al. 2015; Adebayo et al. 2018 |
# | 10 | [CAM family](10_cam.ipynb) | Zhou et al. 2016; Selvaraju et al. 2017; Chattopadhyay et al. 2018 |
# | 11 | [feature map inversion](11_feature_map_inversion.ipynb) | Xia et al. 2016 |
# | 12 | [code modification styles](12_code_modification_styles.ipynb) | Xia et al. 2016 |
# | 13 | [explanatory graph](13_explanatory_graph.ipynb) | Zhang et al. 2018 |
# | 14 | [feature generalisation](14_feature_generalisation.ipynb) | ZF §5, Tables 4–7, Fig. 9 |
