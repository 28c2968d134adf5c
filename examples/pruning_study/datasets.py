"""The studies' real data sets, bundled with pip packages (no download).

* digits (scikit-learn): 1,797 real 8x8 scans of handwritten digits, values
  0..16, scaled to [0, 1]; a stratified-free random 80/20 split.
* diabetes (scikit-learn): 442 real patients, 10 baseline measurements, a
  disease-progression score one year later (25..346); random 80/20 split.
* sunspots (statsmodels): yearly mean sunspot numbers 1700-2008 (309 values);
  windows of `window` years predict the next year; the last 20% of the years
  are held out (a chronological split, so no future leaks into training).

Every loader returns a Dataset of float32 arrays (int64 labels for digits);
regression targets are standardized with the training split's mean and std,
which `target_mean`/`target_std` carry so metrics can be reported in the
data's own units.
"""
import collections

import numpy as np

Dataset = collections.namedtuple('Dataset', [
    'name', 'train_x', 'train_y', 'test_x', 'test_y', 'target_mean',
    'target_std'])

_TEST_FRACTION = 0.2


def _require(module_name, extra_hint):
  try:
    return __import__(module_name, fromlist=['_'])
  except ImportError:
    raise ImportError('%s is needed for this study and is not installed; '
                      "install the examples' extras with: pip install "
                      "'.[examples]' (or: pip install %s)"
                      % (module_name, extra_hint)) from None


def _random_split(x, y, seed):
  """80/20 split after a seeded permutation."""
  order = np.random.RandomState(seed).permutation(len(x))
  cut = int(round(len(x) * (1.0 - _TEST_FRACTION)))
  return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def _standardized(name, train_x, train_y, test_x, test_y):
  mean, std = float(train_y.mean()), float(train_y.std())
  return Dataset(name, train_x.astype(np.float32),
                 ((train_y - mean) / std).astype(np.float32),
                 test_x.astype(np.float32),
                 ((test_y - mean) / std).astype(np.float32), mean, std)


def load_digits(seed=0):
  """Digits as [n, 8, 8, 1] images in [0, 1] and int64 labels 0..9."""
  sk_datasets = _require('sklearn.datasets', 'scikit-learn')
  bunch = sk_datasets.load_digits()
  images = (bunch.images / 16.0).astype(np.float32)[..., None]
  train_x, train_y, test_x, test_y = _random_split(
      images, bunch.target.astype(np.int64), seed)
  return Dataset('digits', train_x, train_y, test_x, test_y, None, None)


def load_diabetes(seed=0):
  """Diabetes: [n, 10] features (standardized by the training split)."""
  sk_datasets = _require('sklearn.datasets', 'scikit-learn')
  bunch = sk_datasets.load_diabetes()
  train_x, train_y, test_x, test_y = _random_split(
      bunch.data.astype(np.float64), bunch.target.astype(np.float64), seed)
  mean, std = train_x.mean(axis=0), train_x.std(axis=0)
  return _standardized('diabetes', (train_x - mean) / std, train_y,
                       (test_x - mean) / std, test_y)


def sunspot_series():
  """The yearly sunspot numbers 1700-2008 as a float64 array."""
  sunspots = _require('statsmodels.datasets.sunspots', 'statsmodels')
  return np.asarray(sunspots.load_pandas().data['SUNACTIVITY'],
                    dtype=np.float64)


def windows(series, window):
  """[n - window, window, 1] inputs and the following value as target.

  Example: series [1, 2, 3, 4], window 2 -> inputs [[1, 2], [2, 3]], targets
  [3, 4].
  """
  if not 1 <= window < len(series):
    raise ValueError('window must be in [1, %d), got %d'
                     % (len(series), window))
  inputs = np.stack([series[i:i + window]
                     for i in range(len(series) - window)])
  return inputs[..., None], series[window:]


def load_sunspots(window=12):
  """Sunspot windows; the last 20% of the targets are the test split.

  Inputs are scaled with the training targets' mean and std (the same
  scale as the standardized targets).
  """
  inputs, targets = windows(sunspot_series(), window)
  cut = int(round(len(targets) * (1.0 - _TEST_FRACTION)))
  mean, std = targets[:cut].mean(), targets[:cut].std()
  inputs = (inputs - mean) / std
  return _standardized('sunspots', inputs[:cut], targets[:cut],
                       inputs[cut:], targets[cut:])
