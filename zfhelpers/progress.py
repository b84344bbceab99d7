"""Progress bars: always tqdm's text bar, never the ipywidgets one.

``tqdm.auto`` picks the widget bar inside any Jupyter kernel, papermill's and nbclient's included.
A saved notebook keeps only that widget's text form, frozen at the state it had when first shown
(``0%|          | 0/10``), and a reopened one cannot find the widget. The text bar writes carriage-
return lines to stderr: JupyterLab redraws them in place while the cell runs, and the notebook
stores the final line."""

from __future__ import annotations

from tqdm.std import tqdm

__all__ = ["tqdm"]
