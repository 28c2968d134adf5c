"""Mask pictures for check_sparsity --plot (matplotlib, imported lazily).

matplotlib is an optional extra (`pip install 'model_pruning[plot]'`); nothing
here imports it until a picture is drawn, so the library and the checker work
without it. Drawing uses the non-interactive Agg backend.

Pictures:
  * per weight, the top-left corner (default 64x64) of its 2-D view with the
    input axis as rows: kept entries dark, pruned light, and the group
    boundaries drawn: a line every N rows for an N:M pattern, or a grid every
    block for `--block=HxW` (the picture of TF-MOT's 2:4 tutorial);
  * one bar chart of the fraction of zeros per weight.
"""
import re

import numpy as np

INSTALL_HINT = ("check_sparsity --plot needs matplotlib, which is not "
                "installed; install it with: pip install 'model_pruning[plot]' "
                "(or: pip install matplotlib)")


class MissingMatplotlibError(ImportError):
  """matplotlib is not importable; the message says how to install it."""


def require_pyplot():
  """Returns `matplotlib.pyplot` on the Agg backend, or raises with a hint."""
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use('Agg')
    from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise MissingMatplotlibError(INSTALL_HINT) from None
  return pyplot


def parse_block(text):
  """Parses '4x4' (or '4,4') into (height, width) of positive ints."""
  match = re.match(r'^\s*(\d+)\s*[x,]\s*(\d+)\s*$', text or '')
  if match is None or 0 in (int(match.group(1)), int(match.group(2))):
    raise ValueError("block must look like 'HxW' with H, W >= 1, got %r; "
                     "use e.g. '4x4'" % (text,))
  return int(match.group(1)), int(match.group(2))


def two_d_view(array, input_axis):
  """Input axis as rows, every other axis flattened (in order) into columns.

  `[h, w, in, out]` with input_axis=-2 becomes `[in, h*w*out]`; a dense
  `[in, out]` stays as is.
  """
  array = np.moveaxis(np.asarray(array), input_axis, 0)
  return array.reshape(array.shape[0], -1)


def file_stem(index, name):
  """'003_conv1_weights' for weight 3 named 'conv1/weights' (safe file name)."""
  return '%03d_%s' % (index, re.sub(r'[^A-Za-z0-9_.-]+', '_', name)[:100])


def plot_mask_corner(array, input_axis, path, title, group_rows=None,
                     block=None, corner=64):
  """Writes a PNG of the top-left `corner` x `corner` of the zero pattern.

  Args:
    array: the weight (zeros = pruned).
    input_axis: axis drawn as rows.
    path: output PNG path.
    title: picture title (the weight name and its sparsity).
    group_rows: N of an N:M pattern: a line every N rows.
    block: (height, width): a grid every block.
    corner: side of the corner shown.
  """
  pyplot = require_pyplot()
  kept = (two_d_view(array, input_axis) != 0)[:corner, :corner]
  rows, cols = kept.shape
  fig, axes = pyplot.subplots(figsize=(6, 6 * max(rows, 1) / max(cols, 1) + 1))
  axes.imshow(kept, cmap='Greys', vmin=0, vmax=1, interpolation='nearest',
              aspect='equal')
  row_step, col_step = block if block else (group_rows, None)
  for step, count, draw in ((row_step, rows, axes.axhline),
                            (col_step, cols, axes.axvline)):
    if step:
      for edge in range(step, count, step):
        draw(edge - 0.5, color='tab:red', linewidth=1.2)
  axes.set_xlabel('output (other axes flattened); dark = kept')
  axes.set_ylabel('input channel')
  axes.set_title(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  pyplot.close(fig)


def plot_sparsity_bars(names, sparsities, path):
  """Writes a horizontal bar chart of the fraction of zeros per weight."""
  pyplot = require_pyplot()
  height = 1.0 + 0.3 * max(len(names), 1)
  fig, axes = pyplot.subplots(figsize=(8, height))
  positions = np.arange(len(names))
  axes.barh(positions, sparsities, color='tab:blue')
  axes.set_yticks(positions)
  axes.set_yticklabels(names, fontsize=7)
  axes.invert_yaxis()
  axes.set_xlim(0.0, 1.0)
  axes.set_xlabel('fraction of zeros')
  axes.set_title('sparsity per weight')
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  pyplot.close(fig)
