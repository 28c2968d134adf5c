"""Compiles the fused mask-update kernels against the installed TensorFlow.

One g++ call (about 7 s) with TensorFlow's own compile and link flags; the
result is a shared library for `tf.load_op_library`. Used by
`native_kernels` (built once per machine into a cache) and by the Bazel
genrule (`python3 model_pruning/python/native_build.py --output=...`).
Stdlib and TensorFlow only, so it also runs as a plain script.
"""
import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'native',
                      'pruning_kernels.cc')
LIBRARY_NAME = '_pruning_kernels.so'
# A shared library with -O3 for the vector loops; no -march: it must run on
# any CPU of the platform (the float32 pass uses SSE2, which every x86-64
# has).
_BUILD_FLAGS = ['-O3', '-fPIC', '-shared']


def compiler():
  """The C++ compiler: $CXX, else g++ or c++ on PATH, else None."""
  candidates = [os.environ['CXX']] if os.environ.get('CXX') else ['g++', 'c++']
  for name in candidates:
    path = shutil.which(name)
    if path:
      return path
  return None


def command(output, source=SOURCE, cxx=None):
  """The compile command line for `source` into the library `output`."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return ([cxx or compiler()] + list(tf.sysconfig.get_compile_flags()) +
          _BUILD_FLAGS + [source, '-o', output] +
          list(tf.sysconfig.get_link_flags()))


def build_key(source=SOURCE):
  """What the library depends on: source text, TensorFlow build, compiler.

  A cached library is reused only while all three stay the same.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  digest = hashlib.sha256()
  with open(source, 'rb') as f:
    digest.update(f.read())
  for part in ([tf.__version__, tf.sysconfig.get_lib(), compiler() or '',
                sys.platform] + list(tf.sysconfig.get_compile_flags()) +
               _BUILD_FLAGS):
    digest.update(part.encode('utf-8') + b'\0')
  return digest.hexdigest()[:16]


def build(output, source=SOURCE, timeout_s=300):
  """Compiles into `output` atomically; raises RuntimeError with the
  compiler's last lines on failure."""
  cxx = compiler()
  if cxx is None:
    raise RuntimeError('no C++ compiler found (set CXX or install g++)')
  directory = os.path.dirname(os.path.abspath(output))
  os.makedirs(directory, exist_ok=True)
  handle, partial = tempfile.mkstemp(suffix='.so', dir=directory)
  os.close(handle)
  try:
    result = subprocess.run(command(partial, source, cxx),
                            capture_output=True, text=True,
                            timeout=timeout_s, check=False)
    if result.returncode != 0:
      tail = '\n'.join(result.stderr.strip().splitlines()[-15:])
      raise RuntimeError('%s exited with %d:\n%s' % (cxx, result.returncode,
                                                     tail))
    os.replace(partial, output)
  finally:
    if os.path.exists(partial):
      os.remove(partial)
  return output


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--output', required=True,
                      help='path of the shared library to write')
  parser.add_argument('--source', default=SOURCE,
                      help='the kernels\' C++ source')
  args = parser.parse_args(argv)
  build(args.output, args.source)


if __name__ == '__main__':
  main()
