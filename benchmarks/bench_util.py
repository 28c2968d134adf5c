"""Shared helpers of the benchmark scripts: timing, machine facts, output.

Most figures are the median of `repeats` timed runs after `warmup` untimed
ones, so one slow run (another process, a page-fault storm) does not move it.
The training benchmark's judged points compare mean steps instead
(`points_over`), each run's steps winsorized at their 99th percentile: a
cost one step in 10 or 100 pays would vanish under a median.
"""
import gc
import json
import os
import platform
import statistics
import time

import numpy as np
import tensorflow as tf

from model_pruning.python import native_kernels


def median_ms(fn, repeats, warmup, setup=None):
  """Median wall time of `fn()` in milliseconds, after `warmup` calls.

  `setup()`, when given, runs untimed before every call (warm-up included).
  Python's garbage collector runs once before the timed calls and not
  during them (as in `timeit`): a collection inside one configuration's
  window would charge it a cost that is not its own.
  """
  for _ in range(warmup):
    if setup:
      setup()
    fn()
  times = []
  gc_was_enabled = gc.isenabled()
  gc.collect()
  gc.disable()
  try:
    for _ in range(repeats):
      if setup:
        setup()
      start = time.perf_counter()
      fn()
      times.append(time.perf_counter() - start)
  finally:
    if gc_was_enabled:
      gc.enable()
  return 1e3 * statistics.median(times)


def winsorized(step_times, quantile=99.0):
  """`step_times` with every value above its `quantile`th percentile set to
  it: a preemption (a step 3x as slow) would otherwise outweigh the effects
  a benchmark compares, while a cost every step or every 100th step pays
  sits below the cap."""
  step_times = np.asarray(step_times, dtype=np.float64)
  return np.minimum(step_times, np.percentile(step_times, quantile))


def points_over(pruned, floor):
  """100 (sum(pruned) / sum(floor) - 1): the overhead of one run's mean step
  over another's, in points of the floor; rows are rounds, columns the
  steps of a block (any shapes; each is winsorized first)."""
  return 100.0 * (winsorized(pruned).sum() / winsorized(floor).sum() - 1.0)


def points_split(pruned, floor, part):
  """(points of the steps in `part`, points of the others): the pruned
  steps' excess over the floor's step at the same round and position,
  summed over each part, in points of the floor's sum (both winsorized
  first), so the two add up to `points_over(pruned, floor)`. `part`: a
  boolean array of the steps' shape (the steps that ran an update, say)."""
  excess, floor = excess_over(pruned, floor)
  part = np.asarray(part, dtype=bool)
  return (100.0 * excess[part].sum() / floor.sum(),
          100.0 * excess[~part].sum() / floor.sum())


def excess_over(pruned, floor):
  """(pruned - floor step by step, the floor), both winsorized."""
  floor = winsorized(floor)
  return winsorized(pruned) - floor, floor


def points_interval(pruned, floor, group, confidence=0.95, resamples=2000,
                    seed=0, part=None):
  """(low, high): a bootstrap interval of `points_over(pruned, floor)`, or
  with `part` of that part's points (`points_split`).

  Resamples whole groups of `group` consecutive rounds (one cycle of the
  orders the rounds run in, whose order effects cancel within it) and takes
  the central `confidence` quantiles. Seeded, so a table prints the same
  interval for the same steps.
  """
  if not 0.0 < confidence < 1.0:
    raise ValueError('confidence must be in (0, 1), got %r (0.95 for a 95%% '
                     'interval)' % (confidence,))
  if group < 1:
    raise ValueError('group must be >= 1, got %d' % group)
  pruned = np.asarray(pruned, dtype=np.float64)
  floor = np.asarray(floor, dtype=np.float64)
  groups = len(pruned) // group
  if groups < 2:
    raise ValueError('points_interval needs at least two groups of %d rounds,'
                     ' got %d rounds' % (group, len(pruned)))
  excess, floor = excess_over(pruned[:groups * group],
                              floor[:groups * group])
  if part is not None:
    excess = np.where(np.asarray(part, dtype=bool)[:groups * group], excess,
                      0.0)
  excess = excess.reshape(groups, -1).sum(axis=1)
  floor = floor.reshape(groups, -1).sum(axis=1)
  rng = np.random.default_rng(seed)
  picks = rng.integers(0, groups, size=(resamples, groups))
  points = 100.0 * excess[picks].sum(axis=1) / floor[picks].sum(axis=1)
  tail = 50.0 * (1.0 - confidence)
  low, high = np.percentile(points, [tail, 100.0 - tail])
  return float(low), float(high)


def peak_step_bytes(session, fetches):
  """Peak bytes that one `session.run(fetches)` held in new allocations.

  Runs once with a full trace: TensorFlow's tracking allocator then records
  every allocation and deallocation of the step's ops (time, bytes). Replayed
  in time order, their running sum is what the step allocated beyond the
  buffers that already existed (variables), and its maximum is the step's
  peak extra memory. Memory a caching allocator keeps between steps, which
  hides temporaries from the process's resident set, does not hide them
  here.
  """
  metadata = tf.compat.v1.RunMetadata()
  session.run(fetches, options=tf.compat.v1.RunOptions(
      trace_level=tf.compat.v1.RunOptions.FULL_TRACE),
              run_metadata=metadata)
  records = sorted(
      (record.alloc_micros, record.alloc_bytes)
      for device in metadata.step_stats.dev_stats
      for node in device.node_stats for memory in node.memory
      for record in memory.allocation_records)
  live = peak = 0
  for _, size in records:
    live += size
    peak = max(peak, live)
  return peak


def session_config(threads):
  """A session config with `threads` intra- and inter-op threads."""
  return tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads,
                                  inter_op_parallelism_threads=threads)


def _cpu_model():
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or 'unknown'


# The cumulative CPU time states of /proc/stat's aggregate line, in order.
_CPU_STATES = ('user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq',
               'steal')
# Steal above this share of CPU time marks a run as taken on a busy host.
BUSY_STEAL_PERCENT = 2.0


def cpu_times(path='/proc/stat'):
  """The machine's cumulative CPU time per state (`_CPU_STATES`), in clock
  ticks, from the aggregate `cpu` line of /proc/stat; None where that file
  is missing or unreadable (not Linux)."""
  try:
    with open(path) as f:
      fields = f.readline().split()
  except OSError:
    return None
  if len(fields) < 1 + len(_CPU_STATES) or fields[0] != 'cpu':
    return None
  try:
    return dict(zip(_CPU_STATES, (int(x) for x in fields[1:])))
  except ValueError:
    return None


def steal_percent(before, after):
  """100 * steal / all CPU time between two `cpu_times` readings: the share
  a virtual machine's host gave to other guests. Load averages do not see
  it, yet it slows every run by up to that much, unevenly; None when a
  reading is missing or no time passed."""
  if not before or not after:
    return None
  total = sum(after[s] - before[s] for s in _CPU_STATES)
  if total <= 0:
    return None
  return 100.0 * (after['steal'] - before['steal']) / total


def machine():
  """Facts that make a timing comparable: CPU, cores, load, versions, and
  the CPU time so far (`cpu_times`, for the steal over the runs)."""
  return dict(cpu=_cpu_model(), cores=os.cpu_count(),
              load_average=[round(x, 2) for x in os.getloadavg()],
              cpu_times=cpu_times(),
              python=platform.python_version(), tensorflow=tf.__version__,
              numpy=np.__version__, platform=platform.platform(),
              date=time.strftime('%Y-%m-%d %H:%M:%S %Z'))


def print_table(columns, rows):
  """Prints rows (dicts) as a fixed-width table with the given columns."""
  cells = [[_format(row.get(c)) for c in columns] for row in rows]
  widths = [max([len(c)] + [len(r[i]) for r in cells])
            for i, c in enumerate(columns)]
  print('  '.join(c.rjust(w) for c, w in zip(columns, widths)))
  for r in cells:
    print('  '.join(v.rjust(w) for v, w in zip(r, widths)))


def _format(value):
  if value is None:
    return '-'
  if isinstance(value, float):
    return '%.3g' % value if abs(value) < 10 else '%.1f' % value
  return str(value)


def write_json(path, payload):
  """Writes `payload` as indented JSON, creating the directory."""
  directory = os.path.dirname(path)
  if directory:
    os.makedirs(directory, exist_ok=True)
  with open(path, 'w') as f:
    json.dump(payload, f, indent=1, sort_keys=True)
  print('wrote %s' % path)


def report(benchmark, columns, rows, before, output, **settings):
  """Prints the table and the machine line; writes the JSON when `output`.

  `before` is machine() taken before the runs; the load after them and the
  steal over them (`steal_percent`) are added, so a reader can tell a
  quiet run from a busy one: a busy host gets a warning line.
  """
  print_table(columns, rows)
  after = machine()
  load_after = after['load_average']
  steal = steal_percent(before.get('cpu_times'), after['cpu_times'])
  kernels = native_kernels.pipeline()
  isa = native_kernels.vector_isa()
  print('machine: %s, %d cores, load %s -> %s, steal %s; mask updates: %s%s'
        % (before['cpu'], before['cores'], before['load_average'],
           load_after, 'unknown' if steal is None else '%.1f%%' % steal,
           kernels, ' (%s)' % isa if isa else ''))
  if steal is not None and steal > BUSY_STEAL_PERCENT:
    print('warning: the host gave %.1f%% of CPU time to other guests during '
          'the runs (steal): these figures come from a busy machine; rerun '
          'when steal stays under %g%%.' % (steal, BUSY_STEAL_PERCENT))
  if output:
    write_json(output, dict(settings, benchmark=benchmark, machine=before,
                            mask_kernels=kernels, vector_isa=isa,
                            load_average_after=load_after,
                            steal_percent=steal, rows=rows))
