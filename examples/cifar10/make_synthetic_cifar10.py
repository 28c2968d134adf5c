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
  python3 -m examples.cifar10.make_synthetic_cifar10 \
    --data_dir=/tmp/cifar10_data
"""
from absl import app
from absl import flags

from examples.cifar10 import synthetic_data

_DATA_DIR = flags.DEFINE_string(
    'data_dir', '/tmp/cifar10_data',
    'Parent directory; files go to <data_dir>/cifar-10-batches-bin/.')
_TRAIN_RECORDS_PER_BATCH = flags.DEFINE_integer(
    'train_records_per_batch', 1000,
    'Records in each of data_batch_1..5.bin.', lower_bound=1)
_TEST_RECORDS = flags.DEFINE_integer(
    'test_records', 1000, 'Records in test_batch.bin.', lower_bound=1)
_SEED = flags.DEFINE_integer('seed', 0, 'Random seed (same seed, same bytes).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s' % ' '.join(argv[1:]))
  batches_dir = synthetic_data.write_synthetic_cifar10(
      _DATA_DIR.value, train_records_per_batch=_TRAIN_RECORDS_PER_BATCH.value,
      test_records=_TEST_RECORDS.value, seed=_SEED.value)
  print('Wrote synthetic CIFAR-10 (%d x 5 train, %d test records) to %s'
        % (_TRAIN_RECORDS_PER_BATCH.value, _TEST_RECORDS.value, batches_dir))


if __name__ == '__main__':
  app.run(main)
