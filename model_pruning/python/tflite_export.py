"""Exports a stripped GraphDef as a TFLite flatbuffer with sparse weights.

The strip tool folds every mask into its weight, so a pruned layer is a
constant full of zeros. TFLite's sparsity optimization
(`tf.lite.Optimize.EXPERIMENTAL_SPARSITY`) stores such constants in a
compressed sparse encoding (values plus index arrays) instead of densely;
`export_stripped_graph` writes that model and, for the report, also converts
the same graph without the optimization, so the two sizes can be compared:

  sizes = export_stripped_graph(graph_def, ['logits'], '/tmp/m.tflite')
  print(format_sizes(sizes))
  # TFLite (quantization none): dense 4276668 bytes raw, 739176 bytes gzip;
  # sparse 653572 bytes raw, 522798 bytes gzip (15.3% of dense raw)

Inputs: a stripped graph's inputs are its `Placeholder` nodes. By default the
placeholders the outputs depend on are found automatically (in graph order);
`input_node_names` picks them explicitly, and `input_shapes` fixes unknown
dimensions (an unknown leading batch dimension is fine: TFLite keeps it
resizable). The conversion runs in a fresh graph; nothing touches the
caller's default graph.

Accuracy: the sparse encoding is storage only. TFLite adds a DENSIFY op that
expands the kernel when the model is prepared, so the sparse model computes
bit for bit what the dense TFLite model computes. Both match the GraphDef to
float32 rounding, not bit for bit: TFLite's kernels add the products in
another order than TensorFlow's. float16 stores weights in half precision
(relative error up to 2**-11 per weight); int8 is dynamic-range quantization
(int8 weights, activations quantized on the fly). See
docs/tflite_export.md.
"""
import collections
import difflib
import gzip
import warnings

import tensorflow as tf

QUANTIZATIONS = ('none', 'float16', 'int8')

# Sizes in bytes of the dense and the sparse-encoded flatbuffers, raw and
# gzip-compressed; the quantization used for both; and a warning (None if
# none), e.g. when the sparse model needs TFLite's default delegates off.
TfliteSizes = collections.namedtuple(
    'TfliteSizes', ['dense_raw', 'dense_gzip', 'sparse_raw', 'sparse_gzip',
                    'quantization', 'warning'])

_NO_DELEGATE_HINT = (
    'the sparse model fails to load with TFLite\'s default (XNNPACK) '
    'delegate: %s; load it with tf.lite.Interpreter(..., '
    'experimental_op_resolver_type=tf.lite.experimental.OpResolverType.'
    'BUILTIN_WITHOUT_DEFAULT_DELEGATES)')


def _node_name(name):
  """'^a', 'a:0' -> 'a'."""
  return name.lstrip('^').split(':', 1)[0]


def _check_names(graph_def, names, what):
  """Raises ValueError for a name not in the graph, naming the closest."""
  known = [node.name for node in graph_def.node]
  for name in names:
    if name not in set(known):
      close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
      hint = ('; closest: ' + ', '.join(close)) if close else ''
      raise ValueError('%s %r is not in the graph%s' % (what, name, hint))


def find_input_placeholders(graph_def, output_node_names):
  """Names of the `Placeholder` nodes the outputs depend on, in graph order.

  Args:
    graph_def: a (stripped) GraphDef.
    output_node_names: list of output node names.

  Returns:
    A list of node names (empty if the outputs are constant).

  Raises:
    ValueError: an output node is not in the graph.
  """
  _check_names(graph_def, output_node_names, 'Output node')
  nodes = {node.name: node for node in graph_def.node}
  seen, pending = set(), list(output_node_names)
  while pending:
    name = pending.pop()
    if name in seen or name not in nodes:
      continue
    seen.add(name)
    pending.extend(_node_name(i) for i in nodes[name].input)
  return [node.name for node in graph_def.node
          if node.op == 'Placeholder' and node.name in seen]


def parse_input_shapes(text):
  """'1,24,24,3:1,10' -> [[1, 24, 24, 3], [1, 10]] (tflite_convert's syntax).

  One shape per input, separated by ':'; '' gives None (keep the graph's
  shapes); '-1' or '?' leaves a dimension unknown.

  Raises:
    ValueError: a dimension is not an integer.
  """
  if not text or not text.strip():
    return None
  shapes = []
  for piece in text.split(':'):
    dims = [d.strip() for d in piece.split(',') if d.strip()]
    try:
      shapes.append([None if d in ('?', '-1') else int(d) for d in dims])
    except ValueError:
      raise ValueError('input shapes must look like 1,24,24,3:1,10 (one '
                       'comma-separated shape per input, ":" between '
                       'inputs), got %r' % text) from None
  return shapes


def _resolve_inputs(graph_def, output_node_names, input_node_names):
  """The input node names: given ones checked, else found automatically."""
  if input_node_names:
    if isinstance(input_node_names, str):
      input_node_names = input_node_names.split(',')
    names = [_node_name(n.strip()) for n in input_node_names if n.strip()]
    _check_names(graph_def, names, 'Input node')
    return names
  names = find_input_placeholders(graph_def, output_node_names)
  if not names:
    raise ValueError('Outputs %s depend on no Placeholder, so the TFLite '
                     'model would have no input; name the inputs with '
                     'input_node_names (--input_node_names)' %
                     ', '.join(output_node_names))
  return names


def _set_shapes(tensors, input_shapes):
  """Applies `input_shapes` (one per input tensor) to the placeholders."""
  if input_shapes is None:
    return
  if len(input_shapes) != len(tensors):
    raise ValueError('Got %d input shapes for %d inputs (%s); give one per '
                     'input' % (len(input_shapes), len(tensors),
                                ', '.join(t.op.name for t in tensors)))
  for tensor, shape in zip(tensors, input_shapes):
    try:
      tensor.set_shape(shape)
    except ValueError:
      raise ValueError('Input shape %s does not fit input %s of shape %s' %
                       (shape, tensor.op.name, tensor.shape)) from None


def _configure(converter, quantization, sparse):
  """Sets the converter's optimizations for `quantization` and sparsity."""
  optimizations = []
  if quantization in ('float16', 'int8'):
    optimizations.append(tf.lite.Optimize.DEFAULT)
  if quantization == 'float16':
    converter.target_spec.supported_types = [tf.float16]
  if sparse:
    optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
  converter.optimizations = optimizations


def convert(graph_def, output_node_names, input_node_names=None,
            input_shapes=None, quantization='none', sparse=True):
  """Converts a frozen GraphDef to TFLite flatbuffer bytes.

  Args:
    graph_def: a frozen (e.g. stripped) GraphDef.
    output_node_names: list of output node names.
    input_node_names: input node names (list or comma-separated str); None
      finds the Placeholders the outputs depend on.
    input_shapes: None, or one shape (list, None for unknown) per input.
    quantization: 'none' (float32), 'float16' or 'int8' (dynamic range).
    sparse: store sparse constants in TFLite's sparse encoding.

  Returns:
    The flatbuffer as bytes.

  Raises:
    ValueError: bad names, shapes or quantization, or a failed conversion.
  """
  if quantization not in QUANTIZATIONS:
    raise ValueError('quantization must be one of %s, got %r' %
                     (', '.join(QUANTIZATIONS), quantization))
  inputs = _resolve_inputs(graph_def, output_node_names, input_node_names)
  with tf.Graph().as_default() as graph:
    tf.compat.v1.import_graph_def(graph_def, name='')
    input_tensors = [graph.get_tensor_by_name(n + ':0') for n in inputs]
    _set_shapes(input_tensors, input_shapes)
    outputs = [graph.get_tensor_by_name(n + ':0') for n in output_node_names]
    with tf.compat.v1.Session(graph=graph) as sess:
      converter = tf.compat.v1.lite.TFLiteConverter.from_session(
          sess, input_tensors, outputs)
      _configure(converter, quantization, sparse)
      try:
        return converter.convert()
      # TF raises a ConverterError that it does not export (tf.lite has no
      # such name), so anything the converter raises is caught here.
      except Exception as error:  # pylint: disable=broad-except
        lines = str(error).strip().splitlines() or ['']
        raise ValueError('TFLite conversion failed (%s): %s' %
                         (type(error).__name__, lines[0])) from error


def load_warning(model_content):
  """None if TFLite's default interpreter loads the model, else why not.

  Raises:
    ValueError: the model does not load even without default delegates.
  """
  no_delegates = (
      tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # tf.lite.Interpreter's deprecation.
    try:
      tf.lite.Interpreter(model_content=model_content).allocate_tensors()
      return None
    except (RuntimeError, ValueError) as error:
      reason = ' '.join(str(error).split())[:200]
    try:
      tf.lite.Interpreter(model_content=model_content,
                          experimental_op_resolver_type=no_delegates
                         ).allocate_tensors()
    except (RuntimeError, ValueError) as error:
      raise ValueError('The TFLite model does not load: %s' % error) from None
  return _NO_DELEGATE_HINT % reason


def _gzip_size(data):
  return len(gzip.compress(data))


def export_stripped_graph(graph_def, output_node_names, output_path,
                          input_node_names=None, input_shapes=None,
                          quantization='none'):
  """Writes the sparse-encoded TFLite model; returns dense vs sparse sizes.

  Args:
    graph_def: a stripped GraphDef (masks folded into constants).
    output_node_names: list of output node names.
    output_path: where to write the sparse flatbuffer.
    input_node_names: see `convert`.
    input_shapes: see `convert`; a str such as '1,24,24,3' is parsed with
      `parse_input_shapes`.
    quantization: 'none', 'float16' or 'int8' (dynamic range), applied to
      both the written model and the dense one it is compared with.

  Returns:
    A TfliteSizes. The dense model is converted only to be measured.

  Raises:
    ValueError: see `convert`.
  """
  if isinstance(input_shapes, str):
    input_shapes = parse_input_shapes(input_shapes)
  options = dict(input_node_names=input_node_names, input_shapes=input_shapes,
                 quantization=quantization)
  sparse = convert(graph_def, output_node_names, sparse=True, **options)
  dense = convert(graph_def, output_node_names, sparse=False, **options)
  warning = load_warning(sparse)
  with open(output_path, 'wb') as f:
    f.write(sparse)
  return TfliteSizes(dense_raw=len(dense), dense_gzip=_gzip_size(dense),
                     sparse_raw=len(sparse), sparse_gzip=_gzip_size(sparse),
                     quantization=quantization, warning=warning)


def format_sizes(sizes):
  """The report line, plus a WARNING line if the export raised one, e.g.

  TFLite (quantization none): dense 1072220 bytes raw, 157109 bytes gzip;
  sparse 182276 bytes raw, 148263 bytes gzip (17.0% of dense raw)
  """
  ratio = 100.0 * sizes.sparse_raw / sizes.dense_raw if sizes.dense_raw else 0
  text = ('TFLite (quantization %s): dense %d bytes raw, %d bytes gzip; '
          'sparse %d bytes raw, %d bytes gzip (%.1f%% of dense raw)' %
          (sizes.quantization, sizes.dense_raw, sizes.dense_gzip,
           sizes.sparse_raw, sizes.sparse_gzip, ratio))
  if sizes.warning:
    text += '\nWARNING: ' + sizes.warning
  return text
