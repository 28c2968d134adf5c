"""Reads the CIFAR-10 binary format and builds the training and eval batches.

The files are the "CIFAR-10 binary version": a directory
`cifar-10-batches-bin/` holding `data_batch_1.bin` .. `data_batch_5.bin` and
`test_batch.bin`, each a plain concatenation of 3073-byte records. A record is
one label byte (0..9) followed by 3072 image bytes in channel-major order: 1024
red, then 1024 green, then 1024 blue bytes, each a 32x32 plane in row-major
order. Decoding reshapes the image bytes to [3, 32, 32] and transposes to
[32, 32, 3] (height, width, channel).

`read_cifar10` keeps upstream's queue-based signature. `distorted_inputs` and
`inputs` keep upstream's names, arguments and preprocessing but use a tf.data
pipeline (no queue runners, and a thread count suited to small machines).
"""
import os

import tensorflow as tf

# The network works on 24x24 crops of the 32x32 images (upstream's choice).
IMAGE_SIZE = 24
NUM_CLASSES = 10
NUM_EXAMPLES_PER_EPOCH_FOR_TRAIN = 50000
NUM_EXAMPLES_PER_EPOCH_FOR_EVAL = 10000

ORIGINAL_SIZE = 32
DEPTH = 3
LABEL_BYTES = 1
IMAGE_BYTES = ORIGINAL_SIZE * ORIGINAL_SIZE * DEPTH
RECORD_BYTES = LABEL_BYTES + IMAGE_BYTES  # 3073

TRAIN_FILENAMES = tuple('data_batch_%d.bin' % i for i in range(1, 6))
TEST_FILENAME = 'test_batch.bin'
# Fraction of an epoch held in the shuffle buffer (upstream: 0.4 of 50000).
MIN_FRACTION_OF_EXAMPLES_IN_QUEUE = 0.4
# Upstream used 16 threads; 2 is right for a small CPU box, more is a flag away.
DEFAULT_NUM_THREADS = 2

HOW_TO_GET_DATA = (
    'Download the CIFAR-10 binary version by hand from '
    'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz and extract it '
    'into --data_dir (giving <data_dir>/cifar-10-batches-bin/), or write a '
    'small synthetic set with: python3 -m '
    'examples.cifar10.make_synthetic_cifar10 --data_dir=<data_dir>')


class CIFAR10Record(object):
  """A decoded record: `key`, `label` ([1] int32), `uint8image` ([32,32,3])."""
  height = ORIGINAL_SIZE
  width = ORIGINAL_SIZE
  depth = DEPTH


def decode_record(record_bytes):
  """Decodes one 3073-byte string into (label [1] int32, uint8 image [32,32,3]).

  Byte 0 is the label; bytes 1..3072 are the channel-major image, reshaped to
  [3, 32, 32] and transposed to [32, 32, 3].
  """
  values = tf.compat.v1.decode_raw(record_bytes, tf.uint8)
  label = tf.cast(tf.strided_slice(values, [0], [LABEL_BYTES]), tf.int32)
  depth_major = tf.reshape(
      tf.strided_slice(values, [LABEL_BYTES], [RECORD_BYTES]),
      [DEPTH, ORIGINAL_SIZE, ORIGINAL_SIZE])
  uint8image = tf.transpose(depth_major, [1, 2, 0])
  label.set_shape([1])
  uint8image.set_shape([ORIGINAL_SIZE, ORIGINAL_SIZE, DEPTH])
  return label, uint8image


def read_cifar10(filename_queue):
  """Reads one record from a filename queue (upstream's queue-based reader).

  Args:
    filename_queue: a queue of file names, e.g. from
      `tf.compat.v1.train.string_input_producer`.

  Returns:
    A `CIFAR10Record` with `height`, `width`, `depth`, `key` (string tensor
    "file:record"), `label` (int32 [1]) and `uint8image` (uint8 [32, 32, 3]).
  """
  result = CIFAR10Record()
  reader = tf.compat.v1.FixedLengthRecordReader(record_bytes=RECORD_BYTES)
  result.key, value = reader.read(filename_queue)
  result.label, result.uint8image = decode_record(value)
  return result


def check_files(filenames):
  """Checks each CIFAR-10 file exists and holds whole records.

  Returns:
    The total number of records in `filenames`.

  Raises:
    ValueError: naming the missing or malformed file and how to get the data.
  """
  total = 0
  for filename in filenames:
    if not tf.io.gfile.exists(filename):
      raise ValueError('Failed to find file: %s. %s' % (filename,
                                                       HOW_TO_GET_DATA))
    size = tf.io.gfile.stat(filename).length
    if size == 0 or size % RECORD_BYTES:
      raise ValueError(
          'File %s has %d bytes, not a positive multiple of the %d-byte '
          'CIFAR-10 record; regenerate or re-extract it. %s'
          % (filename, size, RECORD_BYTES, HOW_TO_GET_DATA))
    total += size // RECORD_BYTES
  return total


def _records(filenames):
  """A dataset of (label [1] int32, uint8 image [32,32,3]) from `filenames`."""
  dataset = tf.data.FixedLengthRecordDataset(list(filenames), RECORD_BYTES)
  return dataset.map(decode_record)


def _batch(dataset, batch_size, num_threads, preprocess, drop_remainder):
  """Preprocesses in parallel, batches, and returns (images, labels [batch])."""
  dataset = dataset.map(preprocess, num_parallel_calls=num_threads)
  dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
  dataset = dataset.prefetch(2)
  images, labels = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()
  tf.compat.v1.summary.image('images', images)
  return images, tf.reshape(labels, [-1])


def _distort(label, uint8image):
  """Upstream's training augmentation: crop, flip, brightness, contrast, std."""
  image = tf.cast(uint8image, tf.float32)
  image = tf.compat.v1.image.random_crop(image, [IMAGE_SIZE, IMAGE_SIZE, DEPTH])
  image = tf.compat.v1.image.random_flip_left_right(image)
  image = tf.compat.v1.image.random_brightness(image, max_delta=63)
  image = tf.compat.v1.image.random_contrast(image, lower=0.2, upper=1.8)
  image = tf.compat.v1.image.per_image_standardization(image)
  image.set_shape([IMAGE_SIZE, IMAGE_SIZE, DEPTH])
  return image, label


def _center(label, uint8image):
  """Upstream's eval preprocessing: central 24x24 crop, standardisation."""
  image = tf.cast(uint8image, tf.float32)
  image = tf.compat.v1.image.resize_image_with_crop_or_pad(
      image, IMAGE_SIZE, IMAGE_SIZE)
  image = tf.compat.v1.image.per_image_standardization(image)
  image.set_shape([IMAGE_SIZE, IMAGE_SIZE, DEPTH])
  return image, label


def distorted_inputs(data_dir, batch_size, num_threads=DEFAULT_NUM_THREADS):
  """Shuffled, augmented training batches from the five train files.

  The shuffle buffer holds min(0.4 * 50000, records on disk) examples, the
  same window upstream's shuffle queue kept; the data repeats forever.

  Args:
    data_dir: the `cifar-10-batches-bin` directory.
    batch_size: examples per batch.
    num_threads: parallel preprocessing calls.

  Returns:
    images: float32 [batch_size, 24, 24, 3]; labels: int32 [batch_size].

  Raises:
    ValueError: a train file is missing or malformed.
  """
  filenames = [os.path.join(data_dir, name) for name in TRAIN_FILENAMES]
  num_records = check_files(filenames)
  buffer_size = min(num_records, int(NUM_EXAMPLES_PER_EPOCH_FOR_TRAIN *
                                     MIN_FRACTION_OF_EXAMPLES_IN_QUEUE))
  print('Filling shuffle buffer with %d CIFAR images before starting to '
        'train.' % buffer_size)
  dataset = _records(filenames).shuffle(buffer_size).repeat()
  return _batch(dataset, batch_size, num_threads, _distort,
                drop_remainder=True)


def inputs(eval_data, data_dir, batch_size, num_threads=DEFAULT_NUM_THREADS,
           num_examples=None):
  """Unshuffled, centrally cropped batches for evaluation.

  Args:
    eval_data: True for `test_batch.bin`, False for the five train files.
    data_dir: the `cifar-10-batches-bin` directory.
    batch_size: examples per batch.
    num_threads: parallel preprocessing calls.
    num_examples: if given, exactly this many examples, cycling through the
      files as upstream's queue did (the last batch may be smaller); if None,
      the files repeat forever in full batches.

  Returns:
    images: float32 [batch, 24, 24, 3]; labels: int32 [batch].

  Raises:
    ValueError: a file is missing or malformed.
  """
  names = (TEST_FILENAME,) if eval_data else TRAIN_FILENAMES
  filenames = [os.path.join(data_dir, name) for name in names]
  check_files(filenames)
  dataset = _records(filenames).repeat()
  if num_examples is not None:
    dataset = dataset.take(num_examples)
  return _batch(dataset, batch_size, num_threads, _center,
                drop_remainder=num_examples is None)
