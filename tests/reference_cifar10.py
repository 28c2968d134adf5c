"""Plain-numpy oracles for the CIFAR-10 example; never imports model_pruning.

The layout (docs/upstream.md): 3073-byte records, byte 0 the label, then 1024 red,
1024 green and 1024 blue bytes, each a row-major 32x32 plane.
"""
import numpy as np

RECORD_BYTES = 3073


def parse_cifar10_bytes(data):
  """Returns labels [n] and HWC uint8 images [n, 32, 32, 3] from raw bytes."""
  records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD_BYTES)
  labels = records[:, 0].astype(np.int64)
  planes = records[:, 1:].reshape(-1, 3, 32, 32)  # channel, row, column
  return labels, np.transpose(planes, (0, 2, 3, 1))


def make_record(label, image_hwc):
  """Encodes one HWC uint8 image [32, 32, 3] as a 3073-byte record."""
  planes = np.transpose(image_hwc, (2, 0, 1)).reshape(-1)
  return bytes([label]) + planes.astype(np.uint8).tobytes()


def center_crop_standardize(image_hwc, size=24):
  """Central crop to size x size, then tf per_image_standardization.

  standardized = (x - mean) / max(std, 1 / sqrt(num_elements)).
  """
  offset = (image_hwc.shape[0] - size) // 2
  crop = image_hwc[offset:offset + size, offset:offset + size].astype(
      np.float64)
  adjusted_std = max(crop.std(), 1.0 / np.sqrt(crop.size))
  return (crop - crop.mean()) / adjusted_std
