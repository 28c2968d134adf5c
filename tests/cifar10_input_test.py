"""Tests for the CIFAR-10 reader, pipelines and synthetic data generator."""
import os

import numpy as np
import pytest
import tensorflow as tf

from examples.cifar10 import cifar10_input
from examples.cifar10 import synthetic_data
from tests import reference_cifar10


def _write_synthetic(tmp_path, train=3, test=4, seed=0):
  return synthetic_data.write_synthetic_cifar10(
      str(tmp_path), train_records_per_batch=train, test_records=test,
      seed=seed)


def _read_with_queue(filename, num_records):
  """Reads `num_records` records of `filename` through read_cifar10."""
  with tf.Graph().as_default():
    queue = tf.compat.v1.train.string_input_producer([filename], shuffle=False)
    record = cifar10_input.read_cifar10(queue)
    with tf.compat.v1.Session() as sess:
      coord = tf.compat.v1.train.Coordinator()
      threads = tf.compat.v1.train.start_queue_runners(sess=sess, coord=coord)
      rows = [sess.run([record.key, record.label, record.uint8image])
              for _ in range(num_records)]
      coord.request_stop()
      coord.join(threads)
  return rows


def test_read_cifar10_decodes_generator_records_exactly(tmp_path):
  batches_dir = _write_synthetic(tmp_path, test=4)
  filename = os.path.join(batches_dir, cifar10_input.TEST_FILENAME)
  with open(filename, 'rb') as f:
    want_labels, want_images = reference_cifar10.parse_cifar10_bytes(f.read())
  rows = _read_with_queue(filename, num_records=4)
  for index, (key, label, image) in enumerate(rows):
    assert key.decode().endswith(':%d' % index)
    assert label.shape == (1,) and label.dtype == np.int32
    assert label[0] == want_labels[index]
    np.testing.assert_array_equal(image, want_images[index])


def test_read_cifar10_transposes_channel_major_to_hwc(tmp_path):
  rows, cols, channels = np.meshgrid(np.arange(32), np.arange(32),
                                     np.arange(3), indexing='ij')
  image = ((rows * 7 + cols * 3 + channels * 85) % 256).astype(np.uint8)
  filename = str(tmp_path / 'one.bin')
  with open(filename, 'wb') as f:
    f.write(reference_cifar10.make_record(7, image))
  (_, label, decoded), = _read_with_queue(filename, num_records=1)
  assert label[0] == 7
  np.testing.assert_array_equal(decoded, image)
  # Byte 1 + 1024 * c + 32 * h + w of the record is pixel (h, w, c).
  raw = open(filename, 'rb').read()
  assert decoded[2, 5, 1] == raw[1 + 1024 * 1 + 32 * 2 + 5]


def test_generator_records_match_its_own_examples(tmp_path):
  rng = np.random.default_rng(3)
  labels, images = synthetic_data.synthetic_examples(6, rng)
  data = synthetic_data.encode_records(labels, images)
  got_labels, got_images = reference_cifar10.parse_cifar10_bytes(data)
  np.testing.assert_array_equal(got_labels, labels)
  np.testing.assert_array_equal(got_images, images)


def test_inputs_eval_matches_numpy_crop_and_standardisation(tmp_path):
  batches_dir = _write_synthetic(tmp_path, test=4)
  with open(os.path.join(batches_dir, cifar10_input.TEST_FILENAME), 'rb') as f:
    want_labels, raw_images = reference_cifar10.parse_cifar10_bytes(f.read())
  with tf.Graph().as_default():
    # 5 examples from a 4-record file: wraps around like upstream's queue.
    images, labels = cifar10_input.inputs(
        eval_data=True, data_dir=batches_dir, batch_size=3, num_examples=5)
    with tf.compat.v1.Session() as sess:
      batches = [sess.run([images, labels]) for _ in range(2)]
      with pytest.raises(tf.errors.OutOfRangeError):
        sess.run(images)
  got_images = np.concatenate([b[0] for b in batches])
  got_labels = np.concatenate([b[1] for b in batches])
  order = [0, 1, 2, 3, 0]
  np.testing.assert_array_equal(got_labels, want_labels[order])
  want = np.stack([reference_cifar10.center_crop_standardize(raw_images[i])
                   for i in order])
  np.testing.assert_allclose(got_images, want, rtol=1e-4, atol=1e-4)


def test_distorted_inputs_gives_standardised_training_batches(tmp_path):
  batches_dir = _write_synthetic(tmp_path, train=2)
  written = set()
  for name in cifar10_input.TRAIN_FILENAMES:
    with open(os.path.join(batches_dir, name), 'rb') as f:
      written.update(reference_cifar10.parse_cifar10_bytes(f.read())[0])
  with tf.Graph().as_default():
    images, labels = cifar10_input.distorted_inputs(
        data_dir=batches_dir, batch_size=6, num_threads=1)
    assert images.shape.as_list() == [6, 24, 24, 3]
    assert labels.shape.as_list() == [6]
    with tf.compat.v1.Session() as sess:
      got_images, got_labels = sess.run([images, labels])
  assert set(got_labels) <= written
  np.testing.assert_allclose(got_images.mean(axis=(1, 2, 3)), 0.0, atol=1e-4)
  np.testing.assert_allclose(got_images.std(axis=(1, 2, 3)), 1.0, atol=1e-3)


def test_generator_is_deterministic(tmp_path):
  first = _write_synthetic(tmp_path / 'a', train=2, test=3, seed=5)
  second = _write_synthetic(tmp_path / 'b', train=2, test=3, seed=5)
  other = _write_synthetic(tmp_path / 'c', train=2, test=3, seed=6)
  names = cifar10_input.TRAIN_FILENAMES + (cifar10_input.TEST_FILENAME,)
  for name in names:
    a = open(os.path.join(first, name), 'rb').read()
    assert a == open(os.path.join(second, name), 'rb').read()
    assert a != open(os.path.join(other, name), 'rb').read()
    count = 3 if name == cifar10_input.TEST_FILENAME else 2
    assert len(a) == count * reference_cifar10.RECORD_BYTES


def test_generator_rejects_empty_counts(tmp_path):
  with pytest.raises(ValueError, match='test_records must be >= 1, got 0'):
    _write_synthetic(tmp_path, test=0)


@pytest.mark.parametrize('build,missing', [
    (lambda d: cifar10_input.distorted_inputs(d, 4), 'data_batch_1.bin'),
    (lambda d: cifar10_input.inputs(True, d, 4), 'test_batch.bin'),
    (lambda d: cifar10_input.inputs(False, d, 4), 'data_batch_1.bin'),
], ids=['distorted_inputs', 'inputs_test', 'inputs_train_eval'])
def test_missing_file_error_names_file_and_how_to_get_data(tmp_path, build,
                                                           missing):
  with tf.Graph().as_default():
    with pytest.raises(ValueError) as error:
      build(str(tmp_path))
  message = str(error.value)
  assert 'Failed to find file: %s' % os.path.join(str(tmp_path), missing) in (
      message)
  assert 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz' in message
  assert 'examples.cifar10.make_synthetic_cifar10' in message


def test_truncated_file_error_names_file(tmp_path):
  batches_dir = _write_synthetic(tmp_path, test=2)
  filename = os.path.join(batches_dir, cifar10_input.TEST_FILENAME)
  with open(filename, 'ab') as f:
    f.write(b'\x00' * 10)
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match='not a positive multiple of the 3073'):
      cifar10_input.inputs(True, batches_dir, 2)
