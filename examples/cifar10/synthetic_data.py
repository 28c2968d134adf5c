"""Synthetic, learnable CIFAR-10 data in the real binary layout (no flags).

See make_synthetic_cifar10.py (the binary) for the recipe. Each class c has a
template: a colour (one of ten well separated RGB colours) modulated by a
sinusoidal stripe pattern whose orientation and frequency are specific to c,

    image = clip(colour_c * (0.45 + 0.55 * stripes_c(y + dy, x + dx)) + noise)

with a random phase shift (dy, dx) per image and Gaussian pixel noise
(std 25). Same seed and counts, same bytes.
"""
import os

import numpy as np

from examples.cifar10 import cifar10_input

BATCHES_DIRNAME = 'cifar-10-batches-bin'
NOISE_STDDEV = 25.0

# Ten distinct colours, one per class (RGB, 0..255).
_COLOURS = np.array([
    [230, 40, 40], [40, 200, 40], [40, 60, 230], [230, 220, 40],
    [220, 40, 220], [40, 210, 220], [240, 140, 30], [130, 40, 200],
    [140, 140, 140], [120, 230, 140]], dtype=np.float32)
# Stripe (fy, fx) in cycles per 32 pixels, one per class.
_FREQUENCIES = np.array([
    [0, 2], [2, 0], [2, 2], [2, -2], [0, 4],
    [4, 0], [3, 3], [3, -3], [1, 5], [5, 1]], dtype=np.float32)


def synthetic_examples(num_records, rng):
  """Draws `num_records` labelled images.

  Args:
    num_records: how many examples.
    rng: a `numpy.random.Generator`.

  Returns:
    labels: uint8 [n] in 0..9; images: uint8 [n, 32, 32, 3] (height, width,
    channel).
  """
  size = cifar10_input.ORIGINAL_SIZE
  labels = rng.integers(0, cifar10_input.NUM_CLASSES, size=num_records)
  shifts = rng.uniform(0.0, size, size=(num_records, 2)).astype(np.float32)
  grid = np.arange(size, dtype=np.float32)
  y = grid[None, :, None] + shifts[:, 0, None, None]
  x = grid[None, None, :] + shifts[:, 1, None, None]
  freq = _FREQUENCIES[labels]
  phase = 2.0 * np.pi * (freq[:, 0, None, None] * y +
                         freq[:, 1, None, None] * x) / size
  stripes = 0.5 + 0.5 * np.sin(phase)  # [n, 32, 32]
  template = _COLOURS[labels][:, None, None, :] * (
      0.45 + 0.55 * stripes[..., None])
  noise = rng.normal(0.0, NOISE_STDDEV, size=template.shape)
  images = np.clip(np.rint(template + noise), 0, 255).astype(np.uint8)
  return labels.astype(np.uint8), images


def encode_records(labels, images):
  """Encodes labels [n] and HWC images [n,32,32,3] as CIFAR-10 record bytes.

  Each record is the label byte followed by the image transposed to
  channel-major [3, 32, 32] order.
  """
  channel_major = np.transpose(images, (0, 3, 1, 2)).reshape(len(labels), -1)
  records = np.concatenate([labels[:, None], channel_major], axis=1)
  return records.astype(np.uint8).tobytes()


def write_synthetic_cifar10(data_dir, train_records_per_batch=1000,
                            test_records=1000, seed=0):
  """Writes the six CIFAR-10 files to `<data_dir>/cifar-10-batches-bin`.

  Existing files of the same names are overwritten; nothing else is touched.

  Args:
    data_dir: parent directory (created if missing).
    train_records_per_batch: records in each data_batch_<i>.bin.
    test_records: records in test_batch.bin.
    seed: random seed; equal seeds and counts give identical files.

  Returns:
    The `cifar-10-batches-bin` directory path.

  Raises:
    ValueError: a record count is below 1.
  """
  for name, value in (('train_records_per_batch', train_records_per_batch),
                      ('test_records', test_records)):
    if value < 1:
      raise ValueError('%s must be >= 1, got %r' % (name, value))
  batches_dir = os.path.join(data_dir, BATCHES_DIRNAME)
  os.makedirs(batches_dir, exist_ok=True)
  rng = np.random.default_rng(seed)
  plan = [(name, train_records_per_batch)
          for name in cifar10_input.TRAIN_FILENAMES]
  plan.append((cifar10_input.TEST_FILENAME, test_records))
  for filename, count in plan:
    labels, images = synthetic_examples(count, rng)
    with open(os.path.join(batches_dir, filename), 'wb') as f:
      f.write(encode_records(labels, images))
  return batches_dir
