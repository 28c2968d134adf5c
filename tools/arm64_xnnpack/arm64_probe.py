"""Runs (dense, sparse) .tflite pairs on the aarch64 LiteRT runtime.

Runs inside the emulated aarch64 Python (setup_arm64_runtime.sh); imports
only numpy and ai_edge_litert. For each pair prints one JSON line: median
single-thread invoke time of each file, whether their outputs are
bit-identical, and their largest difference; or the load error.

  arm64_probe.py RUNS dense.tflite,sparse.tflite [...]
"""
import json
import sys
import time

import numpy as np
from ai_edge_litert import interpreter as litert


def _run(path, runs):
  model = litert.Interpreter(model_path=path, num_threads=1)
  model.allocate_tensors()
  source = model.get_input_details()[0]
  image = np.random.RandomState(0).rand(*source['shape']).astype(np.float32)
  model.set_tensor(source['index'], image)
  model.invoke()
  output = model.get_tensor(model.get_output_details()[0]['index'])
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    model.invoke()
    times.append(time.perf_counter() - start)
  return output, 1e3 * float(np.median(times))


def main(argv):
  runs = int(argv[1])
  for pair in argv[2:]:
    dense, sparse = pair.split(',')
    line = {'dense': dense, 'sparse': sparse}
    try:
      dense_out, line['dense_ms'] = _run(dense, runs)
      sparse_out, line['sparse_ms'] = _run(sparse, runs)
      line['bit_identical'] = dense_out.tobytes() == sparse_out.tobytes()
      line['max_abs_diff'] = float(np.max(np.abs(dense_out - sparse_out)))
    except (RuntimeError, ValueError) as error:
      line['error'] = ' '.join(str(error).split())[:200]
    print(json.dumps(line), flush=True)


if __name__ == '__main__':
  main(sys.argv)
