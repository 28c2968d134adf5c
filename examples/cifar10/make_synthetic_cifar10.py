"""Writes a small, learnable synthetic data set in the CIFAR-10 binary layout.

The output is `<data_dir>/cifar-10-batches-bin/` with `data_batch_1.bin` ..
`data_batch_5.bin` and `test_batch.bin`, each a concatenation of 3073-byte
records (1 label byte, then the 32x32 image as 1024 red, 1024 green, 1024 blue
bytes): exactly what `cifar10_input` reads for the real data set.

Each class c has a template: a colour (one of ten well separated RGB colours)
modulated by a sinusoidal stripe pattern whose orientation and frequency are
also specific to c,

    image = clip(colour_c * (0.45 + 0.55 * stripes_c(y + dy, x + dx)) + noise)

with a random phase shift (dy, dx) per image and Gaussian pixel noise
(std 25). Colour survives the training augmentation (per-image
standardisation keeps channel ratios), the stripes survive crops and flips,
so a few hundred training steps reach well above the 10% chance level.
Same seed, same bytes.

Usage:
  python3 -m examples.cifar10.make_synthetic_cifar10 --data_dir=/tmp/cifar10_data
"""
import os

from absl import app
from absl import flags
import numpy as np

from examples.cifar10 import cifar10_input

_DATA_DIR = flags.DEFINE_string(
    'data_dir', '/tmp/cifar10_data',
    'Parent directory; files go to <data_dir>/cifar-10-batches-bin/.')
_TRAIN_RECORDS_PER_BATCH = flags.DEFINE_integer(
    'train_records_per_batch', 1000,
    'Records in each of data_batch_1..5.bin.', lower_bound=1)
_TEST_RECORDS = flags.DEFINE_integer(
    'test_records', 1000, 'Records in test_batch.bin.', lower_bound=1)
_SEED = flags.DEFINE_integer('seed', 0, 'Random seed (same seed, same bytes).')

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
  """Writes the six CIFAR-10 binary files under `<data_dir>/cifar-10-batches-bin`.

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


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s' % ' '.join(argv[1:]))
  batches_dir = write_synthetic_cifar10(
      _DATA_DIR.value, train_records_per_batch=_TRAIN_RECORDS_PER_BATCH.value,
      test_records=_TEST_RECORDS.value, seed=_SEED.value)
  print('Wrote synthetic CIFAR-10 (%d x 5 train, %d test records) to %s'
        % (_TRAIN_RECORDS_PER_BATCH.value, _TEST_RECORDS.value, batches_dir))


if __name__ == '__main__':
  app.run(main)
