"""Explorer redraw time per channel move: the notebooks' former explorers vs the persistent drawings.

Former (as notebooks 01–03 had it): a new pyplot figure per move, shown as a tight PNG, and for
02 a full forward pass for the map plus :func:`zfhelpers.methods.projection.unit_projection` from scratch. Now:
:mod:`zfhelpers.notebook.explorers` — one figure updated in place, JPEG, and the forward pass per
(image, layer) cached so a move costs one backward pass. Both use the same thread count; the
projections both paths show are checked equal before timing. Kernel-side time only (the browser
adds ~0.1 s; ``make ui-test`` measures key press → new image).

    python benchmarks/bench_explorer.py [--moves 5] [--quick]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from common import machine, result  # noqa: E402

import zfhelpers  # noqa: E402
from zfhelpers.methods.projection import unit_projection  # noqa: E402
from zfhelpers.methods.targets import strongest_channels  # noqa: E402
from zfhelpers.models.capture import capture_detached  # noqa: E402
from zfhelpers.notebook import explorers, widgets  # noqa: E402
from zfhelpers.notebook import plots as viz  # noqa: E402


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def per_move(fn, channels) -> float:
    """Median seconds of ``fn(channel)`` over the channels (one move each)."""
    times = []
    for c in channels:
        start = time.perf_counter()
        fn(c)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_01(moves: int) -> tuple[float, float]:
    lm = zfhelpers.load_model("mobilenet_v2")
    s = zfhelpers.prepare("chelsea", lm.preprocess)
    acts = capture_detached(lm, s.tensor, ["block3"])["block3"][0]
    drawing = explorers.FeatureMapDrawing(lm, s)
    assert torch.equal(drawing.activations("block3"), acts)
    chans = range(1, moves + 1)
    former = per_move(lambda c: png(viz.plot_channel(s.display, acts[c], layer="block3", channel=c)), chans)
    now = per_move(lambda c: (drawing(layer="block3", channel=c), widgets.figure_jpeg(drawing.figure)), chans)
    return former, now


def bench_02(moves: int, layer: str = "relu3_3", border: int = 2) -> tuple[float, float]:
    lm = zfhelpers.load_model("vgg16_hed")
    s = zfhelpers.prepare("chelsea", lm.preprocess)
    drawing = explorers.ProjectionDrawing(lm, {"chelsea": s}, border=border)
    acts = drawing.acts("chelsea", layer)
    chans = [c for c in strongest_channels(acts, 4 * moves, by="max", border=border)][::4][:moves]  # live units
    for c in chans[:2]:
        ref = unit_projection(lm, s.tensor, layer=layer, channels=c, border=border)
        assert torch.allclose(drawing.unit("chelsea", layer, c).maps, ref.maps, atol=1e-5 * float(ref.maps.abs().max()))
    drawing.unit.cache_clear()

    def former(c):
        fmap = capture_detached(lm, s.tensor, [layer])[layer][0]
        p = unit_projection(lm, s.tensor, layer=layer, channels=c, border=border)
        return png(viz.plot_layer_projections(s.display, [{"layer": layer, "acts": fmap, "projection": p}]))

    def now(c):
        drawing(layer=layer, channel=c, image="chelsea")
        return widgets.figure_jpeg(drawing.figure)

    return per_move(former, chans), per_move(now, chans)


BUDGET_S = 0.5  # issue #16: a redraw within half a second of a slider move


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 moves")
    args = parser.parse_args()
    if args.quick:
        args.moves = 3
    torch.set_num_threads(widgets.redraw_threads())
    print(f"# median per channel move over {args.moves} moves; {machine()}; load {os.getloadavg()[0]:.1f}")
    for name, bench in (("01 feature maps (block3)", bench_01), ("02 projections (relu3_3)", bench_02)):
        former, now = bench(args.moves)
        print(f"{name:26} former {former:.3f} s   now {now:.3f} s   ratio {former / now:.2f}x")
        key = name.split()[0]
        result(f"explorer_{key}_vs_former", former / now, 1)
        result(f"explorer_{key}_budget_0.5s_over_redraw", BUDGET_S / now, 1)  # >= 1: within the 0.5 s budget


if __name__ == "__main__":
    main()
