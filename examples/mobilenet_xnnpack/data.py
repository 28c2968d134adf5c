"""scikit-learn's bundled digits (1797 8x8 images) as 32x32x3 float images.

Nothing is downloaded: the data ships inside scikit-learn. Each 8x8 image
(values 0..16) is scaled to [0, 1], upsampled 4x by pixel repetition to
32x32 and repeated over 3 channels, so a MobileNet-style first convolution
(3 input channels, 3x3 stride 2) applies unchanged.
"""
import numpy as np

IMAGE_SIZE = 32
NUM_CLASSES = 10


def load_digits(test_fraction=0.2, seed=0):
  """Returns (train_images, train_labels, test_images, test_labels).

  Images are float32 [n, 32, 32, 3] in [0, 1]; labels int64 [n]. The split
  is a seeded permutation, the same for the same arguments.

  Raises:
    ValueError: test_fraction outside (0, 1).
  """
  if not 0.0 < test_fraction < 1.0:
    raise ValueError('test_fraction must be in (0, 1), got %r' % test_fraction)
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  digits = datasets.load_digits()
  images = upsample(digits.images.astype(np.float32) / 16.0)
  labels = digits.target.astype(np.int64)
  order = np.random.RandomState(seed).permutation(len(labels))
  n_test = int(round(test_fraction * len(labels)))
  test, train = order[:n_test], order[n_test:]
  return images[train], labels[train], images[test], labels[test]


def upsample(images, factor=IMAGE_SIZE // 8):
  """[n, h, w] -> [n, h*factor, w*factor, 3] by pixel repetition."""
  big = np.repeat(np.repeat(images, factor, axis=1), factor, axis=2)
  return np.repeat(big[..., np.newaxis], 3, axis=3)
