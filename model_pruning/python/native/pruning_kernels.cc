// Fused CPU kernels for the mask update (docs/native_kernels.md): one op per
// weight computes the method's rank, the k-th largest magnitude, the
// threshold and the mask, mostly in one pass over the weight; N:M masks in
// one pass; block pooling and the block mask's expansion, one pass each; and
// the k-th selection alone.
//
// The TensorFlow-op pipeline (thresholds.py) materialises |w|, a cleaned copy,
// boolean temporaries and a cast mask: about six passes over the weight, and
// some 40 small ops for the formulas. These kernels read the weight where it
// lies and write only the mask.
//
// Magnitudes are "cleaned" exactly as saliency_masks._finite does: NaN -> 0,
// x -> min(x, max finite of T) (so +Inf -> max; -Inf stays, and only arises
// when take_abs is false).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/resource_var.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/platform/mutex.h"
#include "tensorflow/core/platform/thread_annotations.h"
#include "tensorflow/core/util/work_sharder.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

namespace model_pruning {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::shape_inference::InferenceContext;

REGISTER_OP("ModelPruningKthLargest")
    .Input("values: T")
    .Input("k: int32")
    .Output("kth: T")
    .Output("count_above: int32")
    .Output("count_at: int32")
    .Output("max_value: T")
    .Attr("T: {float, double}")
    .Attr("take_abs: bool = true")
    .SetShapeFn([](InferenceContext* c) {
      for (int i = 0; i < 4; ++i) c->set_output(i, c->Scalar());
      return absl::OkStatus();
    })
    .Doc(R"doc(
The k-th largest cleaned magnitude of `values` (any shape, N > 0), with the
counts above and at it and the largest cleaned magnitude. k is clamped to
[1, N]. Exact: the last call's bracket (warm) or a sample's brackets the
k-th value, one pass counts what lies above the bracket and collects the
values inside; when both miss, it selects from all.
)doc");

// The two mask-update ops' shared signature: the inputs before the mask
// variable, the outputs after the threshold (and mask), the attrs.
#define MODEL_PRUNING_MASK_UPDATE_INPUTS \
  .Input("values: T")                    \
      .Input("sparsity: float")          \
      .Input("previous_threshold: T")    \
      .Input("smoothing: T")
#define MODEL_PRUNING_MASK_UPDATE_OUTPUTS_AND_ATTRS   \
  .Output("kth: T")                                   \
      .Output("count_above: int32")                   \
      .Output("count_at: int32")                      \
      .Output("max_value: T")                         \
      .Output("k: int32")                             \
      .Attr("T: {float, double}")                     \
      .Attr("method: {'histogram', 'sort', 'exact'}") \
      .Attr("nbins: int >= 1 = 256")                  \
      .Attr("take_abs: bool = true")

REGISTER_OP("ModelPruningMaskUpdate")
    MODEL_PRUNING_MASK_UPDATE_INPUTS
    .Output("threshold: T")
    .Output("mask: float")
    MODEL_PRUNING_MASK_UPDATE_OUTPUTS_AND_ATTRS
    .SetShapeFn([](InferenceContext* c) {
      for (int i = 0; i < 7; ++i) c->set_output(i, c->Scalar());
      c->set_output(1, c->input(0));
      return absl::OkStatus();
    })
    .Doc(R"doc(
One weight's mask update at `sparsity` by `method` (thresholds.py's rules).
Returns the threshold; the float32 mask, 1.0 where the cleaned magnitude
is above the threshold for histogram, at or above it for sort, and at or
above the k-th value for exact (none when it keeps 0); the k-th largest
cleaned magnitude with the counts above and at it; the largest; and k, the
number exact keeps or else the rank selected. `smoothing` = (1 - decay,
decay) mixes the new threshold with `previous_threshold` (not for exact).
Exact leaves ties that straddle k to the caller (when k - count_above <
count_at).
)doc");

REGISTER_OP("ModelPruningMaskUpdateInPlace")
    MODEL_PRUNING_MASK_UPDATE_INPUTS
    .Input("mask: resource")
    .Output("threshold: T")
    MODEL_PRUNING_MASK_UPDATE_OUTPUTS_AND_ATTRS
    .SetIsStateful()
    .SetShapeFn([](InferenceContext* c) {
      for (int i = 0; i < 6; ++i) c->set_output(i, c->Scalar());
      return absl::OkStatus();
    })
    .Doc(R"doc(
ModelPruningMaskUpdate writing the mask into `mask`, an initialized float32
resource variable of the values' shape, under its lock: into its own buffer
when nothing else holds it (no new buffer, nothing freed), else into a new
one it then holds. The outputs are ModelPruningMaskUpdate's but the mask.
)doc");
#undef MODEL_PRUNING_MASK_UPDATE_INPUTS
#undef MODEL_PRUNING_MASK_UPDATE_OUTPUTS_AND_ATTRS

REGISTER_OP("ModelPruningMByNMask")
    .Input("scores: T")
    .Output("mask: float")
    .Attr("T: {float, double}")
    .Attr("m: int >= 0")
    .Attr("n: int >= 1")
    .Attr("take_abs: bool = true")
    .SetShapeFn([](InferenceContext* c) {
      ::tensorflow::shape_inference::ShapeHandle scores;
      TF_RETURN_IF_ERROR(c->WithRankAtLeast(c->input(0), 2, &scores));
      c->set_output(0, scores);
      return absl::OkStatus();
    })
    .Doc(R"doc(
N:M mask along axis -2 (nm_sparsity.m_by_n_mask's rule): in each group of
n consecutive input channels, the m largest scores (|scores| when take_abs)
survive, ties to the lower index; a last, partial group keeps at most m.
)doc");

REGISTER_OP("ModelPruningMByNMaskInPlace")
    .Input("scores: T")
    .Input("m: int32")
    .Input("mask: resource")
    .Attr("T: {float, double}")
    .Attr("n: int >= 1")
    .Attr("take_abs: bool = true")
    .SetIsStateful()
    .SetShapeFn([](InferenceContext* c) {
      ::tensorflow::shape_inference::ShapeHandle scores;
      ::tensorflow::shape_inference::ShapeHandle m;
      TF_RETURN_IF_ERROR(c->WithRankAtLeast(c->input(0), 2, &scores));
      return c->WithRank(c->input(1), 0, &m);
    })
    .Doc(R"doc(
ModelPruningMByNMask with m a scalar input (>= 0; m >= n keeps every
weight), writing into `mask`, an initialized float32 resource variable of
the scores' shape, under its lock: into its own buffer when nothing else
holds it (no new buffer, nothing freed), else into a new one it then holds.
)doc");

REGISTER_OP("ModelPruningPoolBlocks")
    .Input("values: T")
    .Output("pooled: T")
    .Attr("T: {float, double}")
    .Attr("block_height: int >= 1")
    .Attr("block_width: int >= 1")
    .Attr("pooling: {'AVG', 'MAX'}")
    .SetShapeFn([](InferenceContext* c) {
      ::tensorflow::shape_inference::ShapeHandle values;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 2, &values));
      int64_t block_height, block_width;
      TF_RETURN_IF_ERROR(c->GetAttr("block_height", &block_height));
      TF_RETURN_IF_ERROR(c->GetAttr("block_width", &block_width));
      const int64_t blocks[2] = {block_height, block_width};
      ::tensorflow::shape_inference::DimensionHandle dims[2];
      for (int i = 0; i < 2; ++i) {
        const auto dim = c->Dim(values, i);
        dims[i] = c->ValueKnown(dim)
                      ? c->MakeDim((c->Value(dim) + blocks[i] - 1) / blocks[i])
                      : c->UnknownDim();
      }
      c->set_output(0, c->Matrix(dims[0], dims[1]));
      return absl::OkStatus();
    })
    .Doc(R"doc(
pruning_utils.pool_blocks of |values| (a matrix) in one pass: 'AVG' or 'MAX'
over non-overlapping block_height x block_width blocks anchored at [0, 0].
AVG adds as TensorFlow's two reduce_means over the padded blocks do for
blocks narrower and shorter than Eigen's vector (native_kernels
.pools_blocks): each block row's sum, left to right, over block_width;
their sum, top to bottom, over block_height; times (block cells / real
cells) for edge blocks. MAX is NaN for a block holding a NaN.
)doc");

REGISTER_OP("ModelPruningExpandBlocks")
    .Input("block_mask: float")
    .Output("mask: float")
    .Attr("block_height: int >= 1")
    .Attr("block_width: int >= 1")
    .Attr("height: int >= 0")
    .Attr("width: int >= 0")
    .SetShapeFn([](InferenceContext* c) {
      ::tensorflow::shape_inference::ShapeHandle block_mask;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 2, &block_mask));
      int64_t height, width;
      TF_RETURN_IF_ERROR(c->GetAttr("height", &height));
      TF_RETURN_IF_ERROR(c->GetAttr("width", &width));
      c->set_output(0, c->Matrix(height, width));
      return absl::OkStatus();
    })
    .Doc(R"doc(
The height x width mask with mask[i, j] = block_mask[i / block_height,
j / block_width] (pruning_utils.expand_tensor, cropped), in one pass.
)doc");

REGISTER_OP("ModelPruningExpandBlocksInPlace")
    .Input("block_mask: float")
    .Input("mask: resource")
    .Attr("block_height: int >= 1")
    .Attr("block_width: int >= 1")
    .Attr("height: int >= 0")
    .Attr("width: int >= 0")
    .SetIsStateful()
    .SetShapeFn([](InferenceContext* c) {
      ::tensorflow::shape_inference::ShapeHandle block_mask;
      return c->WithRank(c->input(0), 2, &block_mask);
    })
    .Doc(R"doc(
ModelPruningExpandBlocks writing into `mask`, an initialized float32
resource variable of height x width values (any shape that squeezes to it),
under its lock: into its own buffer when nothing else holds it (no new
buffer, nothing freed), else into a new one it then holds.
)doc");

namespace {

// Up to this many values (the smallest sample), a plain selection over a
// copy is as fast as a bracket.
constexpr int64_t kDirectMaxSize = 1 << 12;
// The sample: at most 2^15 values, at least 2^12, and about one per 64
// (each sampled value is a cache miss; its reads must stay well below a pass).
constexpr int64_t kMaxSampleSize = 1 << 15;
constexpr int64_t kMinSampleSize = 1 << 12;
constexpr int64_t kValuesPerSample = 64;
// The bracket's margin, in standard deviations of a binomial count: a
// miss costs one more selection over all values, never a wrong answer.
constexpr double kMarginStddevs = 3.0;
// The warm bracket spans at least this many ranks either side of the
// predicted k-th value, and at least 1/kWarmRankDivisor of them.
constexpr int64_t kWarmMinDelta = 64;
constexpr int64_t kWarmRankDivisor = 2048;
// A histogram band reaches this fraction of the predicted threshold below
// it, for a maximum that shrank since the estimate (Selector::ScanLow):
// on the MLP at sparsity 0.5, 10 train steps between updates, the band
// held a median 0.6% of the values against 1.1% with the last threshold
// less 1/64, and 8% of the updates needed the mask's second pass.
constexpr double kEdgeSlack = 1.0 / 512;
// Columns of an N:M group handled at a time (n rows of them in L1).
constexpr int64_t kColumnChunk = 256;
// Shard's cost estimate of one value of a pass (it sizes the shards).
constexpr int64_t kCostPerElement = 4;
// A pass over fewer values than this per shard runs on the calling thread:
// 2^15 values take about 10 us, less than waking pool threads, which in
// training are often busy with the other weights' updates anyway.
constexpr int64_t kMinShardValues = 1 << 15;
// Masks of at least this many values (16 MiB, 32 MiB with their float32
// weights: more than most last-level caches keep) are written with
// non-temporal stores. A cached store first reads the mask line it
// overwrites, from memory for a mask that size; a streaming store skips
// that read (4096^2: 4.2-4.5 -> 3.8-4.1 ms). Smaller masks may sit in
// cache, where streaming measured anywhere from 18% faster to 5% slower
// (docs/native_kernels.md).
constexpr int64_t kStreamMinValues = int64_t{1} << 22;
// Streaming stores need aligned addresses: the vector loops start here.
constexpr uintptr_t kStreamAlignment = 32;

// Whether a pass writes a mask of `size` values with streaming stores;
// $MODEL_PRUNING_NATIVE_STREAM=1 (always) or 0 (never) overrides the size
// rule, read at every pass so that tests check both ways at any size.
bool StreamsMask(int64_t size) {
  const char* stream = std::getenv("MODEL_PRUNING_NATIVE_STREAM");
  if (stream != nullptr && std::strcmp(stream, "1") == 0) return true;
  if (stream != nullptr && std::strcmp(stream, "0") == 0) return false;
  return size >= kStreamMinValues;
}

// The first i in [begin, end] with mask + i aligned for streaming stores.
inline int64_t AlignedStart(const float* mask, int64_t begin, int64_t end) {
  const uintptr_t address = reinterpret_cast<uintptr_t>(mask + begin);
  const int64_t skip = static_cast<int64_t>(
      ((kStreamAlignment - address % kStreamAlignment) % kStreamAlignment) /
      sizeof(float));
  return std::min(end, begin + skip);
}

template <typename T>
inline T Clean(T x, bool take_abs) {
  if (take_abs) x = std::fabs(x);
  if (std::isnan(x)) return T(0);
  return std::min(x, std::numeric_limits<T>::max());
}

// A fixed-seed 64-bit generator (splitmix64): the sample is reproducible.
inline uint64_t SplitMix(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// One pass over values[begin, end) (v cleaned): adds #(v > high) to *above,
// raises *max_value to the largest v, writes the indices and values of the
// v in [low, high] to band[0, ...) and band_values[0, ...) (room for
// end - begin each) and, when `mask` is not null, mask[i] = [v > high];
// returns how many it wrote.
template <typename T>
int64_t ScanRangeScalar(const T* values, int64_t begin, int64_t end, T low,
                        T high, bool take_abs, int64_t* above, T* max_value,
                        int64_t* band, T* band_values, float* mask) {
  int64_t count = 0;
  int64_t appended = 0;
  T largest = *max_value;
  for (int64_t i = begin; i < end; ++i) {
    const T v = Clean(values[i], take_abs);
    largest = std::max(largest, v);
    const bool is_above = v > high;
    count += is_above;
    if (mask != nullptr) mask[i] = is_above ? 1.0f : 0.0f;
    band[appended] = i;
    band_values[appended] = v;
    appended += (v >= low) & (v <= high);
  }
  *above += count;
  *max_value = largest;
  return appended;
}

// `stream`: write the mask with streaming stores where a vector loop can
// (StreamsMask); the scalar loops ignore it.
template <typename T>
int64_t ScanRange(const T* values, int64_t begin, int64_t end, T low, T high,
                  bool take_abs, int64_t* above, T* max_value, int64_t* band,
                  T* band_values, float* mask, bool /*stream*/) {
  return ScanRangeScalar(values, begin, end, low, high, take_abs, above,
                         max_value, band, band_values, mask);
}

// 1.0 where Clean(v) > threshold (>= when inclusive), for [begin, end).
template <typename T>
void MaskRangeScalar(const T* values, int64_t begin, int64_t end, T threshold,
                     bool take_abs, bool inclusive, float* mask) {
  if (inclusive) {
    for (int64_t i = begin; i < end; ++i) {
      mask[i] = Clean(values[i], take_abs) >= threshold ? 1.0f : 0.0f;
    }
  } else {
    for (int64_t i = begin; i < end; ++i) {
      mask[i] = Clean(values[i], take_abs) > threshold ? 1.0f : 0.0f;
    }
  }
}

template <typename T>
void MaskRange(const T* values, int64_t begin, int64_t end, T threshold,
               bool take_abs, bool inclusive, float* mask, bool /*stream*/) {
  MaskRangeScalar(values, begin, end, threshold, take_abs, inclusive, mask);
}

#ifdef __SSE2__
// float32 with SSE2 (every x86-64), 16 values a step, branch-free: the
// count and max stay in registers, the mask is stored from the same
// compare, and only steps that hold a band value leave the vector path, to
// append one index per band value (docs/native_kernels.md).
//
// Cleaning (NaN -> 0, +Inf -> max) changes no comparison when
// 0 < low <= high < max: NaN compares false like the 0 it stands for (below
// low) and +Inf compares like max. Then the loop only zeroes NaN lanes for
// the maximum and clamps it once at the end (kClean false); otherwise it
// cleans every value first (kClean true).
namespace sse {

struct Lanes {
  __m128 abs_mask, largest_finite, low, high, one;
  float low_value, high_value;
  bool take_abs;
  bool stream;  // Streaming mask stores; mask + begin is then aligned.
};

template <bool kClean>
inline __m128 Load(const Lanes& c, const float* at) {
  __m128 v = _mm_and_ps(_mm_loadu_ps(at), c.abs_mask);
  if (!kClean) return v;
  v = _mm_andnot_ps(_mm_cmpunord_ps(v, v), v);
  return _mm_min_ps(v, c.largest_finite);
}

// v for the maximum: NaN lanes as 0 (already so when cleaned).
template <bool kClean>
inline __m128 ForMax(__m128 v) {
  return kClean ? v : _mm_andnot_ps(_mm_cmpunord_ps(v, v), v);
}

// A mask vector: streamed (at aligned) or cached.
inline void StoreMask(float* at, __m128 keep, bool stream) {
  if (stream) {
    _mm_stream_ps(at, keep);
  } else {
    _mm_storeu_ps(at, keep);
  }
}

// v >= low and not above high (NaN fails the first test).
inline __m128 InBand(const Lanes& c, __m128 v, __m128 above) {
  return _mm_andnot_ps(above, _mm_cmpge_ps(v, c.low));
}

template <bool kClean, bool kMask>
int64_t ScanRange(const float* values, int64_t begin, int64_t end,
                  const Lanes& c, int64_t* above, float* max_value,
                  int64_t* band, float* band_values, float* mask) {
  constexpr int64_t kStep = 16;
  const int64_t vector_end = end - (end - begin) % kStep;
  int64_t appended = 0;
  __m128 max4 = _mm_set1_ps(*max_value);
  int64_t count = 0;
  int64_t i = begin;
  while (i < vector_end) {
    // int32 lane counts: flushed every 2^22 values, so they never overflow.
    const int64_t stop = std::min(vector_end, i + (int64_t{1} << 22));
    __m128i count4 = _mm_setzero_si128();
    for (; i < stop; i += kStep) {
      __m128 v[4];
      __m128 is_above[4];
      for (int j = 0; j < 4; ++j) {
        v[j] = Load<kClean>(c, values + i + 4 * j);
        is_above[j] = _mm_cmpgt_ps(v[j], c.high);
      }
      max4 = _mm_max_ps(
          max4, _mm_max_ps(_mm_max_ps(ForMax<kClean>(v[0]),
                                      ForMax<kClean>(v[1])),
                           _mm_max_ps(ForMax<kClean>(v[2]),
                                      ForMax<kClean>(v[3]))));
      count4 = _mm_sub_epi32(
          count4,
          _mm_add_epi32(_mm_add_epi32(_mm_castps_si128(is_above[0]),
                                      _mm_castps_si128(is_above[1])),
                        _mm_add_epi32(_mm_castps_si128(is_above[2]),
                                      _mm_castps_si128(is_above[3]))));
      if (kMask) {
        for (int j = 0; j < 4; ++j) {
          StoreMask(mask + i + 4 * j, _mm_and_ps(is_above[j], c.one),
                    c.stream);
        }
      }
      const __m128 b0 = InBand(c, v[0], is_above[0]);
      const __m128 b1 = InBand(c, v[1], is_above[1]);
      const __m128 b2 = InBand(c, v[2], is_above[2]);
      const __m128 b3 = InBand(c, v[3], is_above[3]);
      if (__builtin_expect(
              _mm_movemask_ps(_mm_or_ps(_mm_or_ps(b0, b1),
                                        _mm_or_ps(b2, b3))) != 0, 0)) {
        // Band values are finite and cleaned in either case.
        const uint32_t bits = _mm_movemask_ps(b0) |
                              _mm_movemask_ps(b1) << 4 |
                              _mm_movemask_ps(b2) << 8 |
                              _mm_movemask_ps(b3) << 12;
        alignas(16) float lanes[kStep];
        for (int j = 0; j < 4; ++j) _mm_store_ps(lanes + 4 * j, v[j]);
        // One turn per band value (a step holds one or two, of 16 lanes).
        for (uint32_t rest = bits; rest != 0; rest &= rest - 1) {
          const int lane = __builtin_ctz(rest);
          band[appended] = i + lane;
          band_values[appended] = lanes[lane];
          ++appended;
        }
      }
    }
    alignas(16) int32_t counts[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(counts), count4);
    count += int64_t{counts[0]} + counts[1] + counts[2] + counts[3];
  }
  // Streaming stores are weakly ordered: visible before the caller's.
  if (kMask && c.stream) _mm_sfence();
  alignas(16) float maxes[4];
  _mm_store_ps(maxes, max4);
  *above += count;
  *max_value = std::min(std::max(std::max(maxes[0], maxes[1]),
                                 std::max(maxes[2], maxes[3])),
                        std::numeric_limits<float>::max());
  return appended + ScanRangeScalar(values, i, end, c.low_value,
                                    c.high_value, c.take_abs, above,
                                    max_value, band + appended,
                                    band_values + appended, mask);
}

}  // namespace sse

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MODEL_PRUNING_AVX2 1
// The same passes 8 lanes wide, compiled for AVX2 alone and chosen at run
// time (UseAvx2), so the library still loads on any x86-64: over a weight
// that stays in cache the scan is bound by vector instructions, not memory,
// and AVX2 halves their count.
namespace avx2 {

#define MODEL_PRUNING_TARGET_AVX2 __attribute__((target("avx2")))

struct Lanes {
  __m256 abs_mask, largest_finite, low, high, one;
  float low_value, high_value;
  bool take_abs;
  bool stream;  // As sse::Lanes::stream.
};

template <bool kClean>
MODEL_PRUNING_TARGET_AVX2 inline __m256 Load(const Lanes& c,
                                             const float* at) {
  __m256 v = _mm256_and_ps(_mm256_loadu_ps(at), c.abs_mask);
  if (!kClean) return v;
  v = _mm256_andnot_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q), v);
  return _mm256_min_ps(v, c.largest_finite);
}

template <bool kClean>
MODEL_PRUNING_TARGET_AVX2 inline __m256 ForMax(__m256 v) {
  return kClean ? v : _mm256_andnot_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q), v);
}

MODEL_PRUNING_TARGET_AVX2 inline void StoreMask(float* at, __m256 keep,
                                               bool stream) {
  if (stream) {
    _mm256_stream_ps(at, keep);
  } else {
    _mm256_storeu_ps(at, keep);
  }
}

MODEL_PRUNING_TARGET_AVX2 inline __m256 InBand(const Lanes& c, __m256 v,
                                               __m256 above) {
  return _mm256_andnot_ps(above, _mm256_cmp_ps(v, c.low, _CMP_GE_OQ));
}

// sse::ScanRange 32 values a step.
template <bool kClean, bool kMask>
MODEL_PRUNING_TARGET_AVX2 int64_t ScanRange(const float* values,
                                            int64_t begin, int64_t end,
                                            const Lanes& c, int64_t* above,
                                            float* max_value, int64_t* band,
                                            float* band_values, float* mask) {
  constexpr int64_t kStep = 32;
  const int64_t vector_end = end - (end - begin) % kStep;
  int64_t appended = 0;
  __m256 max8 = _mm256_set1_ps(*max_value);
  int64_t count = 0;
  int64_t i = begin;
  while (i < vector_end) {
    // int32 lane counts: flushed every 2^22 values, so they never overflow.
    const int64_t stop = std::min(vector_end, i + (int64_t{1} << 22));
    __m256i count8 = _mm256_setzero_si256();
    for (; i < stop; i += kStep) {
      __m256 v[4];
      __m256 is_above[4];
      for (int j = 0; j < 4; ++j) {
        v[j] = Load<kClean>(c, values + i + 8 * j);
        is_above[j] = _mm256_cmp_ps(v[j], c.high, _CMP_GT_OQ);
      }
      max8 = _mm256_max_ps(
          max8, _mm256_max_ps(_mm256_max_ps(ForMax<kClean>(v[0]),
                                            ForMax<kClean>(v[1])),
                              _mm256_max_ps(ForMax<kClean>(v[2]),
                                            ForMax<kClean>(v[3]))));
      count8 = _mm256_sub_epi32(
          count8,
          _mm256_add_epi32(
              _mm256_add_epi32(_mm256_castps_si256(is_above[0]),
                               _mm256_castps_si256(is_above[1])),
              _mm256_add_epi32(_mm256_castps_si256(is_above[2]),
                               _mm256_castps_si256(is_above[3]))));
      if (kMask) {
        for (int j = 0; j < 4; ++j) {
          StoreMask(mask + i + 8 * j, _mm256_and_ps(is_above[j], c.one),
                    c.stream);
        }
      }
      const __m256 b0 = InBand(c, v[0], is_above[0]);
      const __m256 b1 = InBand(c, v[1], is_above[1]);
      const __m256 b2 = InBand(c, v[2], is_above[2]);
      const __m256 b3 = InBand(c, v[3], is_above[3]);
      if (__builtin_expect(
              _mm256_movemask_ps(_mm256_or_ps(_mm256_or_ps(b0, b1),
                                              _mm256_or_ps(b2, b3))) != 0,
              0)) {
        const uint32_t bits =
            static_cast<uint32_t>(_mm256_movemask_ps(b0)) |
            static_cast<uint32_t>(_mm256_movemask_ps(b1)) << 8 |
            static_cast<uint32_t>(_mm256_movemask_ps(b2)) << 16 |
            static_cast<uint32_t>(_mm256_movemask_ps(b3)) << 24;
        alignas(32) float lanes[kStep];
        for (int j = 0; j < 4; ++j) _mm256_store_ps(lanes + 8 * j, v[j]);
        // One turn per band value (a step holds one or two, of 32 lanes).
        for (uint32_t rest = bits; rest != 0; rest &= rest - 1) {
          const int lane = __builtin_ctz(rest);
          band[appended] = i + lane;
          band_values[appended] = lanes[lane];
          ++appended;
        }
      }
    }
    alignas(32) int32_t counts[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(counts), count8);
    for (const int32_t lane_count : counts) count += lane_count;
  }
  if (kMask && c.stream) _mm_sfence();
  alignas(32) float maxes[8];
  _mm256_store_ps(maxes, max8);
  *above += count;
  *max_value = std::min(*std::max_element(maxes, maxes + 8),
                        std::numeric_limits<float>::max());
  return appended + ScanRangeScalar(values, i, end, c.low_value,
                                    c.high_value, c.take_abs, above,
                                    max_value, band + appended,
                                    band_values + appended, mask);
}

MODEL_PRUNING_TARGET_AVX2 int64_t ScanRangeFloat(
    const float* values, int64_t begin, int64_t end, float low, float high,
    bool take_abs, int64_t* above, float* max_value, int64_t* band,
    float* band_values, float* mask, bool stream) {
  const float largest_finite = std::numeric_limits<float>::max();
  const Lanes c{_mm256_castsi256_ps(_mm256_set1_epi32(
                    take_abs ? 0x7fffffff : static_cast<int32_t>(0xffffffff))),
                _mm256_set1_ps(largest_finite), _mm256_set1_ps(low),
                _mm256_set1_ps(high), _mm256_set1_ps(1.0f), low, high,
                take_abs, stream};
  const bool clean = !(low > 0 && high < largest_finite);
  if (clean) {
    return mask != nullptr
               ? ScanRange<true, true>(values, begin, end, c, above,
                                       max_value, band, band_values, mask)
               : ScanRange<true, false>(values, begin, end, c, above,
                                        max_value, band, band_values, mask);
  }
  return mask != nullptr
             ? ScanRange<false, true>(values, begin, end, c, above,
                                      max_value, band, band_values, mask)
             : ScanRange<false, false>(values, begin, end, c, above,
                                       max_value, band, band_values, mask);
}

// MaskRange<float>'s vector loop, 8 values a step, for a plain threshold;
// returns where the scalar tail starts.
MODEL_PRUNING_TARGET_AVX2 int64_t MaskRangeFloat(const float* values,
                                                 int64_t begin, int64_t end,
                                                 float threshold,
                                                 bool take_abs,
                                                 bool inclusive,
                                                 float* mask, bool stream) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(
      take_abs ? 0x7fffffff : static_cast<int32_t>(0xffffffff)));
  const __m256 theta = _mm256_set1_ps(threshold);
  const __m256 one = _mm256_set1_ps(1.0f);
  const int64_t vector_end = end - (end - begin) % 8;
  int64_t i = begin;
  if (inclusive) {
    for (; i < vector_end; i += 8) {
      const __m256 v = _mm256_and_ps(_mm256_loadu_ps(values + i), abs_mask);
      StoreMask(mask + i,
                _mm256_and_ps(_mm256_cmp_ps(v, theta, _CMP_GE_OQ), one),
                stream);
    }
  } else {
    for (; i < vector_end; i += 8) {
      const __m256 v = _mm256_and_ps(_mm256_loadu_ps(values + i), abs_mask);
      StoreMask(mask + i,
                _mm256_and_ps(_mm256_cmp_ps(v, theta, _CMP_GT_OQ), one),
                stream);
    }
  }
  if (stream) _mm_sfence();
  return i;
}

#undef MODEL_PRUNING_TARGET_AVX2

}  // namespace avx2

// Whether the passes run 8 lanes wide: when the CPU has AVX2, unless
// $MODEL_PRUNING_NATIVE_ISA is "sse2" (read at every pass, so that tests
// can run both in one process; docs/native_kernels.md).
bool UseAvx2() {
  static const bool has_avx2 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  if (!has_avx2) return false;
  const char* isa = std::getenv("MODEL_PRUNING_NATIVE_ISA");
  return isa == nullptr || std::strcmp(isa, "sse2") != 0;
}
#endif  // x86-64 with GCC or Clang

template <>
int64_t ScanRange<float>(const float* values, int64_t begin, int64_t end,
                         float low, float high, bool take_abs,
                         int64_t* above, float* max_value, int64_t* band,
                         float* band_values, float* mask, bool stream) {
  stream = stream && mask != nullptr;
  // Streaming: the values before the first aligned mask entry go first, on
  // the scalar loop (the band stays in index order).
  const int64_t head = stream ? AlignedStart(mask, begin, end) : begin;
  const int64_t appended =
      ScanRangeScalar(values, begin, head, low, high, take_abs, above,
                      max_value, band, band_values, mask);
  band += appended;
  band_values += appended;
#ifdef MODEL_PRUNING_AVX2
  if (UseAvx2()) {
    return appended + avx2::ScanRangeFloat(values, head, end, low, high,
                                           take_abs, above, max_value, band,
                                           band_values, mask, stream);
  }
#endif
  const float largest_finite = std::numeric_limits<float>::max();
  const sse::Lanes c{
      _mm_castsi128_ps(_mm_set1_epi32(
          take_abs ? 0x7fffffff : static_cast<int32_t>(0xffffffff))),
      _mm_set1_ps(largest_finite), _mm_set1_ps(low), _mm_set1_ps(high),
      _mm_set1_ps(1.0f), low, high, take_abs, stream};
  const bool clean = !(low > 0 && high < largest_finite);
  if (clean) {
    return appended +
           (mask != nullptr
                ? sse::ScanRange<true, true>(values, head, end, c, above,
                                             max_value, band, band_values,
                                             mask)
                : sse::ScanRange<true, false>(values, head, end, c, above,
                                              max_value, band, band_values,
                                              mask));
  }
  return appended +
         (mask != nullptr
              ? sse::ScanRange<false, true>(values, head, end, c, above,
                                            max_value, band, band_values,
                                            mask)
              : sse::ScanRange<false, false>(values, head, end, c, above,
                                             max_value, band, band_values,
                                             mask));
}

// The mask alone: compare and store, 4 values a step. Clean(v) and v
// compare alike against a threshold in (0, max) (inclusive) or [0, max)
// (exclusive), for the reasons above; other thresholds run the scalar loop.
template <>
void MaskRange<float>(const float* values, int64_t begin, int64_t end,
                      float threshold, bool take_abs, bool inclusive,
                      float* mask, bool stream) {
  const bool plain = (inclusive ? threshold > 0 : threshold >= 0) &&
                     threshold < std::numeric_limits<float>::max();
  if (!plain) {
    MaskRangeScalar(values, begin, end, threshold, take_abs, inclusive, mask);
    return;
  }
  if (stream) {  // Up to the first aligned mask entry on the scalar loop.
    const int64_t head = AlignedStart(mask, begin, end);
    MaskRangeScalar(values, begin, head, threshold, take_abs, inclusive,
                    mask);
    begin = head;
  }
#ifdef MODEL_PRUNING_AVX2
  if (UseAvx2()) {
    const int64_t tail = avx2::MaskRangeFloat(
        values, begin, end, threshold, take_abs, inclusive, mask, stream);
    MaskRangeScalar(values, tail, end, threshold, take_abs, inclusive, mask);
    return;
  }
#endif
  const __m128 abs_mask = _mm_castsi128_ps(_mm_set1_epi32(
      take_abs ? 0x7fffffff : static_cast<int32_t>(0xffffffff)));
  const __m128 theta = _mm_set1_ps(threshold);
  const __m128 one = _mm_set1_ps(1.0f);
  const int64_t vector_end = end - (end - begin) % 4;
  int64_t i = begin;
  if (inclusive) {
    for (; i < vector_end; i += 4) {
      const __m128 v = _mm_and_ps(_mm_loadu_ps(values + i), abs_mask);
      sse::StoreMask(mask + i, _mm_and_ps(_mm_cmpge_ps(v, theta), one),
                     stream);
    }
  } else {
    for (; i < vector_end; i += 4) {
      const __m128 v = _mm_and_ps(_mm_loadu_ps(values + i), abs_mask);
      sse::StoreMask(mask + i, _mm_and_ps(_mm_cmpgt_ps(v, theta), one),
                     stream);
    }
  }
  if (stream) _mm_sfence();
  MaskRangeScalar(values, i, end, threshold, take_abs, inclusive, mask);
}
#endif  // __SSE2__

template <typename T>
struct Selection {
  T kth;
  int64_t above;
  int64_t at;
};

// The k-th largest of `candidates` (1 <= rank <= size), which it reorders,
// with the counts above and at it among them.
template <typename T>
Selection<T> SelectInPlace(std::vector<T>* candidates, int64_t rank) {
  auto nth = candidates->begin() + (rank - 1);
  std::nth_element(candidates->begin(), nth, candidates->end(),
                   std::greater<T>());
  const T kth = *nth;
  Selection<T> result{kth, 0, 0};
  for (const T v : *candidates) {
    result.above += v > kth;
    result.at += v == kth;
  }
  return result;
}

// histogram_from_kth's bin edge of x: floor(x nbins / max) clipped to
// [0, nbins - 1], times max / nbins, in float64 (max <= 0 counts as 1).
template <typename T>
T HistogramEdge(T x, T max_value, int64_t nbins) {
  const double max64 = static_cast<double>(max_value);
  const double safe_max = max64 > 0 ? max64 : 1.0;
  const double bin = std::min(
      std::max(std::floor(static_cast<double>(x) * nbins / safe_max), 0.0),
      static_cast<double>(nbins - 1));
  return static_cast<T>(bin * max64 / nbins);
}

// The values in [low, high] (cleaned, with their indices, ascending) and
// that range: the mask entries a threshold inside it decides. Empty with
// low > high: every entry.
template <typename T>
struct Band {
  std::vector<int64_t> indices;
  std::vector<T> values;
  T low = std::numeric_limits<T>::infinity();
  T high = -std::numeric_limits<T>::infinity();
};

// The k-th selection of one op (one weight's update), with the warm start
// it keeps between runs (docs/native_kernels.md). Thread-safe.
template <typename T>
class Selector {
 public:
  // nbins > 0 (histogram): the band reaches one bin below the bracket.
  Selector(bool take_abs, int64_t nbins)
      : take_abs_(take_abs), nbins_(nbins) {}

  // The k-th largest cleaned value (1 <= k <= size), the counts above and
  // at it, and *max_value. When `mask` is not null the pass also writes the
  // provisional mask: 1.0 above band->high, 0.0 below band->low, with
  // *band every value in between (empty for small sizes, whose mask is not
  // written).
  Selection<T> Select(OpKernelContext* context, const T* values, int64_t size,
                      int64_t k, T* max_value, float* mask, Band<T>* band) {
    if (size <= kDirectMaxSize) {
      return SelectFromAll(values, size, k, max_value);
    }
    Selection<T> result;
    T low, high, max_estimate;
    // Only a provisional mask needs the band to reach the threshold.
    const auto scan_low = [&]() {
      return mask != nullptr ? ScanLow(low, max_estimate) : low;
    };
    if (WarmBracket(size, k, &low, &high, &max_estimate)) {
      if (ScanAndSelect(context, values, size, k, scan_low(), low, high,
                        &result, max_value, mask, band)) {
        return result;
      }
      Forget(size);
    }
    Bracket(values, size, k, &low, &high, &max_estimate);
    if (ScanAndSelect(context, values, size, k, scan_low(), low, high,
                      &result, max_value, mask, band)) {
      return result;
    }
    // The bracket missed (rare, or adversarial data): select from all. The
    // pass's mask and band stay valid for the bracket.
    Forget(size);
    return SelectFromAll(values, size, k, max_value);
  }

 private:
  // Sample bounds (low, high) that hold the k-th largest with high odds: a
  // stratified sample of n values has about n k / N above it, within
  // 3 sqrt(n p (1 - p)) + 2 (p = k / N); stratifying only narrows that.
  // *sample_max: the sample's largest value.
  void Bracket(const T* values, int64_t size, int64_t k, T* low, T* high,
               T* sample_max) const {
    const int64_t sample_size = std::max(
        kMinSampleSize, std::min(kMaxSampleSize, size / kValuesPerSample));
    std::vector<T> sample(sample_size);
    uint64_t state = 20171107;
    const double stride = static_cast<double>(size) / sample_size;
    for (int64_t i = 0; i < sample_size; ++i) {
      const double u = (SplitMix(&state) >> 11) * (1.0 / 9007199254740992.0);
      const int64_t index = std::min<int64_t>(
          static_cast<int64_t>((i + u) * stride), size - 1);
      sample[i] = Clean(values[index], take_abs_);
    }
    *sample_max = *std::max_element(sample.begin(), sample.end());
    const double p = static_cast<double>(k) / size;
    const double expected = p * sample_size;
    const double margin =
        kMarginStddevs * std::sqrt(sample_size * p * (1.0 - p)) + 2.0;
    const int64_t high_index =
        static_cast<int64_t>(std::floor(expected - margin));
    const int64_t low_index =
        static_cast<int64_t>(std::ceil(expected + margin));
    const T inf = std::numeric_limits<T>::infinity();
    *high = inf;
    *low = -inf;
    if (high_index >= 0) {
      std::nth_element(sample.begin(), sample.begin() + high_index,
                       sample.end(), std::greater<T>());
      *high = sample[high_index];
    }
    if (low_index < sample_size) {
      std::nth_element(sample.begin(), sample.begin() + low_index,
                       sample.end(), std::greater<T>());
      *low = sample[low_index];
    }
  }

  // The bracket's low end as the pass uses it. For histogram (nbins > 0)
  // the threshold is the bin edge at or below the k-th value (>= low), so
  // the band reaches down to the edge of low's bin under the maximum
  // estimate, less kEdgeSlack of it for a maximum that shrank, and never
  // more than one bin (max / nbins, 3% to spare) below the bracket. Then
  // the threshold usually lands inside and only the band's entries of the
  // provisional mask need comparing; when it does not (the maximum shrank
  // more), one more pass writes the mask.
  T ScanLow(T low, T max_estimate) const {
    if (nbins_ == 0 || !(max_estimate > 0)) return low;
    const T edge = HistogramEdge(low, max_estimate, nbins_);
    const T reach = std::max(low - max_estimate / nbins_ * T(1.03),
                             std::min(low, edge * T(1.0 - kEdgeSlack)));
    // Within a bin of 0 the edge may be 0 itself (bin 0): the band starts
    // at 0 and holds the bottom values, which are few.
    return low > 0 && !(reach > 0) ? T(0) : reach;
  }

  // The bracket the last selection left for this one (its warm start), or
  // false. Valid while the size is the same and k moved by at most what the
  // bracket allows for. *last_max: the maximum that selection saw.
  bool WarmBracket(int64_t size, int64_t k, T* low, T* high, T* last_max) {
    ::tensorflow::mutex_lock lock(mu_);
    if (warm_.size != size || std::abs(k - warm_.k) > warm_.reach) {
      return false;
    }
    *low = warm_.low;
    *high = warm_.high;
    *last_max = warm_.max_value;
    return true;
  }

  // After a selection at rank `rank` of `band` (as SelectInPlace left it,
  // from the bracket [low, high]): the next update's bracket, the values
  // `delta_` ranks either side of where k is predicted to be (k + the move
  // since the last update), or this bracket's ends where the band is
  // shorter. Weights move little between frequent updates: the next k-th
  // value is then inside, and the sample is skipped.
  void Remember(int64_t size, int64_t k, std::vector<T>* band, int64_t rank,
                T low, T high, T max_value) {
    ::tensorflow::mutex_lock lock(mu_);
    const int64_t move = warm_.size == size ? k - warm_.k : 0;
    const int64_t delta = std::max<int64_t>(
        std::max<int64_t>(delta_, size / kWarmRankDivisor), 2 * std::abs(move));
    const int64_t center = rank + move;
    const int64_t band_size = static_cast<int64_t>(band->size());
    // Ranks are 1-based within the band; [0, rank - 1) holds values >= the
    // k-th and [rank, size) values <= it.
    const int64_t high_rank = center - delta;
    const int64_t low_rank = center + delta;
    T next_high = high;
    T next_low = low;
    if (high_rank >= 1 && high_rank < rank) {
      std::nth_element(band->begin(), band->begin() + (high_rank - 1),
                       band->begin() + (rank - 1), std::greater<T>());
      next_high = (*band)[high_rank - 1];
    }
    if (low_rank > rank && low_rank <= band_size) {
      std::nth_element(band->begin() + rank, band->begin() + (low_rank - 1),
                       band->end(), std::greater<T>());
      next_low = (*band)[low_rank - 1];
    }
    warm_ = Warm{size, k + move, delta / 2, next_low, next_high, max_value};
  }

  void Forget(int64_t size) {
    ::tensorflow::mutex_lock lock(mu_);
    warm_.size = -1;
    // A warm bracket that missed was too narrow: widen the next ones.
    delta_ = std::min<int64_t>(
        2 * std::max<int64_t>(delta_, size / kWarmRankDivisor),
        std::max<int64_t>(size / 16, kWarmMinDelta));
  }

  // One pass over the values with the band [low, high] (writing the
  // provisional mask when `mask` is not null), then the selection among the
  // band's values from `select_low` (>= low: the bracket, when the band
  // reaches lower for the mask's sake) up, or among all of them when the
  // k-th is lower. *band holds their indices either way; false when the
  // band missed the k-th value.
  bool ScanAndSelect(OpKernelContext* context, const T* values, int64_t size,
                     int64_t k, T low, T select_low, T high,
                     Selection<T>* result, T* max_value, float* mask,
                     Band<T>* band) {
    // One pass, sharded: #(v > high), the indices of v in [low, high],
    // max(v), and the provisional mask.
    struct Shard {
      int64_t above = 0;
      T max_value = -std::numeric_limits<T>::infinity();
      // Room for every index and value of the shard, uninitialised: only
      // the band's few pages are ever touched.
      std::unique_ptr<int64_t[]> band;
      std::unique_ptr<T[]> band_values;
      int64_t band_size = 0;
    };
    auto* workers = context->device()->tensorflow_cpu_worker_threads();
    const int64_t num_shards = std::clamp<int64_t>(
        size / kMinShardValues, 1, std::max(1, workers->num_threads) * 4);
    const int64_t shard_size = (size + num_shards - 1) / num_shards;
    std::vector<Shard> shards(num_shards);
    const bool take_abs = take_abs_;
    const bool stream = mask != nullptr && StreamsMask(size);
    auto pass = [&](int64_t begin_shard, int64_t end_shard) {
      for (int64_t s = begin_shard; s < end_shard; ++s) {
        Shard& shard = shards[s];
        const int64_t begin = s * shard_size;
        const int64_t end = std::min(size, begin + shard_size);
        if (begin >= end) continue;
        shard.band.reset(new int64_t[end - begin]);
        shard.band_values.reset(new T[end - begin]);
        shard.band_size = ScanRange(values, begin, end, low, high, take_abs,
                                    &shard.above, &shard.max_value,
                                    shard.band.get(),
                                    shard.band_values.get(), mask, stream);
      }
    };
    if (num_shards == 1) {
      pass(0, 1);
    } else {
      ::tensorflow::Shard(workers->num_threads, workers->workers, num_shards,
                          /*cost_per_unit=*/shard_size * kCostPerElement,
                          pass);
    }
    int64_t above = 0;
    *max_value = -std::numeric_limits<T>::infinity();
    band->indices.clear();
    band->values.clear();
    for (const Shard& shard : shards) {
      above += shard.above;
      *max_value = std::max(*max_value, shard.max_value);
      band->indices.insert(band->indices.end(), shard.band.get(),
                           shard.band.get() + shard.band_size);
      band->values.insert(band->values.end(), shard.band_values.get(),
                          shard.band_values.get() + shard.band_size);
    }
    band->low = low;
    band->high = high;
    const int64_t band_size = static_cast<int64_t>(band->indices.size());
    const int64_t rank = k - above;
    if (rank < 1 || rank > band_size) return false;
    // Values below select_low cannot be the k-th when enough lie above it.
    std::vector<T> candidates;
    if (select_low > low) {
      candidates.reserve(band->values.size());
      for (const T v : band->values) {
        if (v >= select_low) candidates.push_back(v);
      }
    }
    if (static_cast<int64_t>(candidates.size()) < rank) {
      candidates = band->values;
      select_low = low;
    }
    *result = SelectInPlace(&candidates, rank);
    result->above += above;
    Remember(size, k, &candidates, rank, select_low, high, *max_value);
    return true;
  }

  // The selection over a cleaned copy of every value, and their maximum.
  Selection<T> SelectFromAll(const T* values, int64_t size, int64_t k,
                             T* max_value) const {
    std::vector<T> all(size);
    for (int64_t i = 0; i < size; ++i) all[i] = Clean(values[i], take_abs_);
    *max_value = *std::max_element(all.begin(), all.end());
    return SelectInPlace(&all, k);
  }

  // The warm start's state: `reach` is how far k may move from `k` for
  // [low, high] to be tried; `max_value` the last maximum (the histogram
  // band's reach). Guarded by mu_ (an op may run in concurrent steps).
  struct Warm {
    int64_t size = -1;
    int64_t k = 0;
    int64_t reach = 0;
    T low = 0;
    T high = 0;
    T max_value = 0;
  };

  const bool take_abs_;
  const int64_t nbins_;
  ::tensorflow::mutex mu_;
  Warm warm_ TF_GUARDED_BY(mu_);
  // Ranks either side of the predicted k-th value that the warm bracket
  // spans; doubled after each warm miss.
  int64_t delta_ TF_GUARDED_BY(mu_) = kWarmMinDelta;
};

absl::Status ScalarInput(OpKernelContext* context, int index,
                         const char* name) {
  const Tensor& tensor = context->input(index);
  if (tensor.dims() == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      name, " must be a scalar, got shape ", tensor.shape().DebugString()));
}

absl::Status NonEmpty(const Tensor& values) {
  if (values.NumElements() > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "values must not be empty; got shape ", values.shape().DebugString()));
}

template <typename T>
void OutputScalar(OpKernelContext* context, int index, T value) {
  Tensor* out = nullptr;
  OP_REQUIRES_OK(context,
                 context->allocate_output(index, TensorShape({}), &out));
  out->scalar<T>()() = value;
}

void OutputCount(OpKernelContext* context, int index, int64_t value) {
  OutputScalar<int32_t>(context, index, static_cast<int32_t>(value));
}

template <typename T>
class KthLargestOp : public OpKernel {
 public:
  explicit KthLargestOp(OpKernelConstruction* context) : OpKernel(context) {
    bool take_abs;
    OP_REQUIRES_OK(context, context->GetAttr("take_abs", &take_abs));
    selector_ = std::make_unique<Selector<T>>(take_abs, 0);
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& values_tensor = context->input(0);
    OP_REQUIRES_OK(context, ScalarInput(context, 1, "k"));
    OP_REQUIRES_OK(context, NonEmpty(values_tensor));
    const int64_t size = values_tensor.NumElements();
    const int64_t k = std::min<int64_t>(
        std::max<int64_t>(context->input(1).scalar<int32_t>()(), 1), size);
    T max_value;
    Band<T> band;
    const Selection<T> result =
        selector_->Select(context, values_tensor.flat<T>().data(), size, k,
                          &max_value, nullptr, &band);
    OutputScalar(context, 0, result.kth);
    OutputCount(context, 1, result.above);
    OutputCount(context, 2, result.at);
    OutputScalar(context, 3, max_value);
  }

 private:
  std::unique_ptr<Selector<T>> selector_;
};

// mask = [Clean(v) > threshold] (>= when inclusive), sharded.
template <typename T>
void WriteMask(OpKernelContext* context, const T* values, int64_t size,
               T threshold, bool take_abs, bool inclusive, float* mask) {
  const bool stream = StreamsMask(size);
  auto pass = [=](int64_t begin, int64_t end) {
    MaskRange(values, begin, end, threshold, take_abs, inclusive, mask,
              stream);
  };
  if (size < 2 * kMinShardValues) {
    pass(0, size);
    return;
  }
  auto* workers = context->device()->tensorflow_cpu_worker_threads();
  ::tensorflow::Shard(workers->num_threads, workers->workers, size,
                      kCostPerElement, pass);
}

// The ranks a threshold method selects at sparsity s, as thresholds.py
// computes them (float32 arithmetic, round half to even):
//   keep = round(N (1 - s)); sort: k = clip(keep, 1, N); exact: keep
//   clipped to [0, N], selecting k = max(keep, 1); histogram: c* the
//   smallest c in [0, N] with float32(c / N) >= s among ceil(s N) - 1 ..
//   + 1 (else N), k = clip(N - c* + 1, 1, N).
struct Ranks {
  int64_t k;            // The rank of the k-th largest to select.
  int64_t keep;         // exact: how many survive (0 keeps none).
  int64_t count_below;  // histogram: c*.
};

// float32 x as an integer, x first held to [-1, size + 1] (an out-of-range
// sparsity: the rank rules clip the result to [0, size] anyway).
int64_t ToCount(float x, int64_t size) {
  const float limit = static_cast<float>(size) + 1.0f;
  return static_cast<int64_t>(std::min(std::max(x, -1.0f), limit));
}

int64_t KeepCount(int64_t size, float sparsity) {
  return ToCount(std::nearbyint(static_cast<float>(size) * (1.0f - sparsity)),
                 size);
}

int64_t Clip(int64_t value, int64_t low, int64_t high) {
  return std::min(std::max(value, low), high);
}

enum class Method { kHistogram, kSort, kExact };

Ranks RanksFor(Method method, int64_t size, float sparsity) {
  if (method != Method::kHistogram) {
    const int64_t keep = KeepCount(size, sparsity);
    if (method == Method::kSort) return {Clip(keep, 1, size), keep, 0};
    const int64_t exact_keep = Clip(keep, 0, size);
    return {std::max<int64_t>(exact_keep, 1), exact_keep, 0};
  }
  const int64_t guess =
      ToCount(std::ceil(sparsity * static_cast<float>(size)), size);
  int64_t count_below = size;
  for (int64_t offset = -1; offset <= 1; ++offset) {
    const int64_t c = Clip(guess + offset, 0, size);
    const float fraction =
        static_cast<float>(static_cast<double>(c) / static_cast<double>(size));
    if (fraction >= sparsity) count_below = std::min(count_below, c);
  }
  return {Clip(size - count_below + 1, 1, size), 0, count_below};
}

// One weight's whole mask update: the method's rank, the k-th selection
// whose pass writes the provisional mask, the threshold, and the mask
// entries in the band (or, when the threshold left it, every entry).
// Runs write(mask) on the float32 mask variable at input `index`, under its
// lock: on the variable's own buffer when no read of it is alive, else on a
// new one the variable then holds (write sets every entry: no copy).
// `fits(shape)` checks the variable's shape, which `wanted` describes.
template <typename Fits, typename Write>
void WriteMaskVariable(OpKernelContext* context, int index, Fits fits,
                       const std::string& wanted, Write write) {
  ::tensorflow::core::RefCountPtr<::tensorflow::Var> variable;
  OP_REQUIRES_OK(context,
                 ::tensorflow::LookupResource(
                     context, ::tensorflow::HandleFromInput(context, index),
                     &variable));
  ::tensorflow::mutex_lock lock(*variable->mu());
  Tensor* mask_tensor = variable->tensor();
  OP_REQUIRES(
      context,
      variable->is_initialized &&
          mask_tensor->dtype() == ::tensorflow::DT_FLOAT &&
          fits(mask_tensor->shape()),
      absl::InvalidArgumentError(absl::StrCat(
          "mask must be an initialized float32 variable of ", wanted,
          ", got ", variable->is_initialized ? "" : "an uninitialized ",
          ::tensorflow::DataTypeString(mask_tensor->dtype()), " ",
          mask_tensor->shape().DebugString(),
          "; run the initializers first")));
  if (!mask_tensor->RefCountIsOne()) {
    Tensor fresh;
    OP_REQUIRES_OK(context,
                   context->allocate_temp(::tensorflow::DT_FLOAT,
                                          mask_tensor->shape(), &fresh));
    *mask_tensor = fresh;
  }
  write(mask_tensor);
}

template <typename T>
class MaskUpdateOp : public OpKernel {
 public:
  explicit MaskUpdateOp(OpKernelConstruction* context) : OpKernel(context) {
    std::string method;
    OP_REQUIRES_OK(context, context->GetAttr("method", &method));
    OP_REQUIRES_OK(context, context->GetAttr("nbins", &nbins_));
    OP_REQUIRES_OK(context, context->GetAttr("take_abs", &take_abs_));
    if (method == "histogram") {
      method_ = Method::kHistogram;
    } else if (method == "sort") {
      method_ = Method::kSort;
    } else {
      method_ = Method::kExact;  // The attr allows no other value.
    }
    selector_ = std::make_unique<Selector<T>>(
        take_abs_, method_ == Method::kHistogram ? nbins_ : 0);
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& values_tensor = context->input(0);
    OP_REQUIRES_OK(context, NonEmpty(values_tensor));
    OP_REQUIRES_OK(context, ScalarInput(context, 1, "sparsity"));
    OP_REQUIRES_OK(context, ScalarInput(context, 2, "previous_threshold"));
    const Tensor& smoothing_tensor = context->input(3);
    OP_REQUIRES(context, smoothing_tensor.NumElements() == 2,
                absl::InvalidArgumentError(absl::StrCat(
                    "smoothing must hold 2 values (1 - decay, decay), got "
                    "shape ", smoothing_tensor.shape().DebugString())));
    OP_REQUIRES(context, !std::isnan(context->input(1).scalar<float>()()),
                absl::InvalidArgumentError(
                    "sparsity is NaN; check the sparsity schedule"));
    if (context->num_inputs() == 4) {
      Tensor* mask_tensor = nullptr;
      OP_REQUIRES_OK(context, context->allocate_output(
                                  1, values_tensor.shape(), &mask_tensor));
      Update(context, mask_tensor->flat<float>().data(), /*first_output=*/2);
      return;
    }
    // In place: the mask variable's buffer, under its lock for the update.
    WriteMaskVariable(
        context, 4,
        [&](const TensorShape& shape) {
          return shape == values_tensor.shape();
        },
        absl::StrCat("the values' shape ", values_tensor.shape().DebugString()),
        [&](Tensor* mask_tensor) {
          Update(context, mask_tensor->flat<float>().data(),
                 /*first_output=*/1);
        });
  }

 private:
  // The update with the mask written to `mask` (every entry); outputs the
  // threshold at 0 and kth, count_above, count_at, max_value, k from
  // `first_output` on.
  void Update(OpKernelContext* context, float* mask, int first_output) {
    const Tensor& values_tensor = context->input(0);
    const float sparsity = context->input(1).scalar<float>()();
    const T previous = context->input(2).scalar<T>()();
    const Tensor& smoothing_tensor = context->input(3);
    const T new_weight = smoothing_tensor.flat<T>()(0);
    const T previous_weight = smoothing_tensor.flat<T>()(1);
    const bool smooths = previous_weight != 0;

    const int64_t size = values_tensor.NumElements();
    const T* values = values_tensor.flat<T>().data();
    const Ranks ranks = RanksFor(method_, size, sparsity);
    // Smoothing may move the threshold far from the k-th value: then the
    // mask is written after, in one pass.
    const bool provisional = !smooths || method_ == Method::kExact;
    T max_value;
    Band<T> band;
    const Selection<T> selection =
        selector_->Select(context, values, size, ranks.k, &max_value,
                          provisional ? mask : nullptr, &band);
    T threshold = selection.kth;
    T cut = selection.kth;
    if (method_ == Method::kExact) {
      // keep = 0 keeps nothing: compare against +inf.
      if (ranks.keep == 0) cut = std::numeric_limits<T>::infinity();
    } else {
      if (method_ == Method::kHistogram) {
        threshold = ranks.count_below > 0
                        ? HistogramEdge(selection.kth, max_value, nbins_)
                        : T(0);
      }
      if (smooths) {
        threshold = new_weight * threshold + previous_weight * previous;
      }
      cut = threshold;
    }
    const bool inclusive = method_ != Method::kHistogram;
    if (provisional && band.low <= cut && cut <= band.high) {
      // Outside the band the provisional mask is right for this cut:
      // v > high >= cut is kept, v < low <= cut is not.
      for (size_t j = 0; j < band.indices.size(); ++j) {
        const T v = band.values[j];
        mask[band.indices[j]] = (inclusive ? v >= cut : v > cut) ? 1.0f : 0.0f;
      }
    } else {
      WriteMask(context, values, size, cut, take_abs_, inclusive, mask);
    }
    OutputScalar(context, 0, threshold);
    OutputScalar(context, first_output, selection.kth);
    OutputCount(context, first_output + 1, selection.above);
    OutputCount(context, first_output + 2, selection.at);
    OutputScalar(context, first_output + 3, max_value);
    OutputCount(context, first_output + 4,
                method_ == Method::kExact ? ranks.keep : ranks.k);
  }

  Method method_;
  int64_t nbins_;
  bool take_abs_;
  std::unique_ptr<Selector<T>> selector_;
};

// One column chunk of one N:M group: `rows` (<= n) rows of `cols` scores
// from `group` (rows `width` apart) into `score` and `margin` (n x
// kColumnChunk each, in L1), each pair i < j compared once (c = [s_j > s_i]
// adds to i's margin and subtracts from j's), then out[i] = [margin_i <
// m - i], with streaming stores when `stream` (StreamsMask; the caller
// fences). Inlined into a default and an AVX2 copy (NmChunkAvx2): the
// compiler vectorizes the column loops, 8 lanes wide in the second.
template <typename T>
__attribute__((always_inline)) inline void NmChunk(
    const T* group, int64_t width, int64_t rows, int64_t cols, int64_t m,
    bool take_abs, bool stream, T* score, int32_t* margin, float* out) {
  for (int64_t i = 0; i < rows; ++i) {
    const T* from = group + i * width;
    T* to = score + i * kColumnChunk;
    for (int64_t o = 0; o < cols; ++o) {
      to[o] = take_abs ? std::fabs(from[o]) : from[o];
    }
    std::fill_n(margin + i * kColumnChunk, cols, 0);
  }
  for (int64_t i = 0; i < rows; ++i) {
    const T* si = score + i * kColumnChunk;
    int32_t* mi = margin + i * kColumnChunk;
    for (int64_t j = i + 1; j < rows; ++j) {
      const T* sj = score + j * kColumnChunk;
      int32_t* mj = margin + j * kColumnChunk;
      for (int64_t o = 0; o < cols; ++o) {
        const int32_t c = sj[o] > si[o];
        mi[o] += c;
        mj[o] -= c;
      }
    }
  }
  for (int64_t i = 0; i < rows; ++i) {
    const int32_t* mi = margin + i * kColumnChunk;
    float* out_row = out + i * width;
    const int32_t limit =
        static_cast<int32_t>(std::min<int64_t>(m, 1 << 30) - i);
    int64_t o = 0;
#ifdef __SSE2__
    if (stream) {
      for (; o < cols && reinterpret_cast<uintptr_t>(out_row + o) % 16 != 0;
           ++o) {
        out_row[o] = mi[o] < limit ? 1.0f : 0.0f;
      }
      const __m128i limits = _mm_set1_epi32(limit);
      const __m128 one = _mm_set1_ps(1.0f);
      for (; o + 4 <= cols; o += 4) {
        const __m128i below = _mm_cmplt_epi32(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(mi + o)),
            limits);
        _mm_stream_ps(out_row + o, _mm_and_ps(_mm_castsi128_ps(below), one));
      }
    }
#endif
    for (; o < cols; ++o) {
      out_row[o] = mi[o] < limit ? 1.0f : 0.0f;
    }
  }
}

template <typename T>
void NmChunkDefault(const T* group, int64_t width, int64_t rows,
                    int64_t cols, int64_t m, bool take_abs, bool stream,
                    T* score, int32_t* margin, float* out) {
  NmChunk(group, width, rows, cols, m, take_abs, stream, score, margin, out);
}

#ifdef MODEL_PRUNING_AVX2
template <typename T>
__attribute__((target("avx2"))) void NmChunkAvx2(
    const T* group, int64_t width, int64_t rows, int64_t cols, int64_t m,
    bool take_abs, bool stream, T* score, int32_t* margin, float* out) {
  NmChunk(group, width, rows, cols, m, take_abs, stream, score, margin, out);
}
#endif

// nm_sparsity._pairwise_keep's rule with the same comparisons (so ties and
// NaN scores give the same mask): with c_ij = [s_j > s_i],
// keep_i <=> sum_{j>i} c_ij - sum_{k<i} c_ki < m - i.
template <typename T>
class MByNMaskOp : public OpKernel {
 public:
  // ModelPruningMByNMask has the attr m; the in-place op takes m as input 1.
  explicit MByNMaskOp(OpKernelConstruction* context) : OpKernel(context) {
    in_place_ = context->num_inputs() == 3;
    if (!in_place_) OP_REQUIRES_OK(context, context->GetAttr("m", &m_));
    OP_REQUIRES_OK(context, context->GetAttr("n", &n_));
    OP_REQUIRES_OK(context, context->GetAttr("take_abs", &take_abs_));
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& scores_tensor = context->input(0);
    const TensorShape& shape = scores_tensor.shape();
    OP_REQUIRES(context, shape.dims() >= 2,
                absl::InvalidArgumentError(absl::StrCat(
                    "scores must have rank >= 2 (input channels on axis "
                    "-2), got shape ", shape.DebugString())));
    if (!in_place_) {
      Tensor* mask_tensor = nullptr;
      OP_REQUIRES_OK(context,
                     context->allocate_output(0, shape, &mask_tensor));
      Write(context, m_, mask_tensor->flat<float>().data());
      return;
    }
    const Tensor& m_tensor = context->input(1);
    OP_REQUIRES(context, m_tensor.dims() == 0,
                absl::InvalidArgumentError(absl::StrCat(
                    "m must be a scalar, got shape ",
                    m_tensor.shape().DebugString())));
    const int64_t m = m_tensor.scalar<int32_t>()();
    OP_REQUIRES(context, m >= 0,
                absl::InvalidArgumentError(absl::StrCat(
                    "m must be >= 0 (how many of every ", n_,
                    " survive), got ", m)));
    // In place: the mask variable's buffer, under its lock for the write.
    WriteMaskVariable(
        context, 2,
        [&](const TensorShape& mask_shape) { return mask_shape == shape; },
        absl::StrCat("the scores' shape ", shape.DebugString()),
        [&](Tensor* mask_tensor) {
          Write(context, m, mask_tensor->flat<float>().data());
        });
  }

 private:
  // Writes every entry of `mask` (the scores' shape): m of every n survive.
  void Write(OpKernelContext* context, int64_t m, float* mask) {
    const Tensor& scores_tensor = context->input(0);
    const TensorShape& shape = scores_tensor.shape();
    const int64_t depth = shape.dim_size(shape.dims() - 2);
    const int64_t width = shape.dim_size(shape.dims() - 1);
    const int64_t total = shape.num_elements();
    if (total == 0) return;
    const int64_t outer = total / (depth * width);
    const int64_t groups_per_outer = (depth + n_ - 1) / n_;
    const T* scores = scores_tensor.flat<T>().data();
    const int64_t n = n_;
    const bool take_abs = take_abs_;
    const bool stream = StreamsMask(total);
    auto chunk = &NmChunkDefault<T>;
#ifdef MODEL_PRUNING_AVX2
    if (UseAvx2()) chunk = &NmChunkAvx2<T>;
#endif
    // One unit of work: one group of n rows of one outer slice, taken in
    // column chunks whose n rows of scores and margins stay in L1 (NmChunk).
    auto pass = [=](int64_t begin, int64_t end) {
      std::vector<T> score(n * kColumnChunk);
      std::vector<int32_t> margin(n * kColumnChunk);
      for (int64_t unit = begin; unit < end; ++unit) {
        const int64_t b = unit / groups_per_outer;
        const int64_t first = (unit % groups_per_outer) * n;
        const int64_t rows = std::min(n, depth - first);
        const T* group = scores + (b * depth + first) * width;
        float* out = mask + (b * depth + first) * width;
        for (int64_t col = 0; col < width; col += kColumnChunk) {
          chunk(group + col, width, rows, std::min(kColumnChunk, width - col),
                m, take_abs, stream, score.data(), margin.data(), out + col);
        }
      }
#ifdef __SSE2__
      // Streaming stores are weakly ordered: visible before the caller's.
      if (stream) _mm_sfence();
#endif
    };
    auto* workers = context->device()->tensorflow_cpu_worker_threads();
    ::tensorflow::Shard(workers->num_threads, workers->workers,
                        outer * groups_per_outer,
                        /*cost_per_unit=*/n * n * width, pass);
  }

  bool in_place_;
  int64_t m_ = 0;
  int64_t n_;
  bool take_abs_;
};

// sums[c] = |row[c bw]| + |row[c bw + 1]| + ..., added left to right, for
// each block c of a row of `width` values (the last one may be cut short).
// With the block width known at compile time the loop over blocks, which
// carries no dependency, is unrolled and vectorized across blocks.
template <typename T, int kWidth>
void RowSumsOf(const T* row, int64_t width, T* sums) {
  const int64_t full = width / kWidth;
  for (int64_t c = 0; c < full; ++c) {
    const T* cells = row + c * kWidth;
    T sum = std::fabs(cells[0]);
    for (int o = 1; o < kWidth; ++o) sum += std::fabs(cells[o]);
    sums[c] = sum;
  }
  if (full * kWidth < width) {
    T sum = 0;
    for (int64_t j = full * kWidth; j < width; ++j) sum += std::fabs(row[j]);
    sums[full] = sum;
  }
}

// The larger of a and b, NaN when either is (TensorFlow's reduce_max), as
// selects without branches: a NaN `a` stays (b > NaN is false).
template <typename T>
inline T MaxOrNan(T a, T b) {
  return b != b ? b : (b > a ? b : a);
}

// maxima[c] = max |row[c bw + o]| over the block's cells, NaN if one is.
template <typename T, int kWidth>
void RowMaximaOf(const T* row, int64_t width, T* maxima) {
  const int64_t full = width / kWidth;
  for (int64_t c = 0; c < full; ++c) {
    const T* cells = row + c * kWidth;
    T m = std::fabs(cells[0]);
    for (int o = 1; o < kWidth; ++o) m = MaxOrNan(m, std::fabs(cells[o]));
    maxima[c] = m;
  }
  if (full * kWidth < width) {
    T m = std::fabs(row[full * kWidth]);
    for (int64_t j = full * kWidth + 1; j < width; ++j) {
      m = MaxOrNan(m, std::fabs(row[j]));
    }
    maxima[full] = m;
  }
}

// RowSumsOf (average) or RowMaximaOf of a row, for any block width: the
// widths up to 8 compiled for their own.
template <typename T>
void RowPool(bool average, const T* row, int64_t width, int64_t block_width,
             T* pooled) {
#define MODEL_PRUNING_ROW_POOL_CASE(k)                               \
  case k:                                                           \
    return average ? RowSumsOf<T, k>(row, width, pooled)            \
                   : RowMaximaOf<T, k>(row, width, pooled);
  switch (block_width) {
    MODEL_PRUNING_ROW_POOL_CASE(1)
    MODEL_PRUNING_ROW_POOL_CASE(2)
    MODEL_PRUNING_ROW_POOL_CASE(3)
    MODEL_PRUNING_ROW_POOL_CASE(4)
    MODEL_PRUNING_ROW_POOL_CASE(5)
    MODEL_PRUNING_ROW_POOL_CASE(6)
    MODEL_PRUNING_ROW_POOL_CASE(7)
    MODEL_PRUNING_ROW_POOL_CASE(8)
    default: break;
  }
#undef MODEL_PRUNING_ROW_POOL_CASE
  const int64_t cols = (width + block_width - 1) / block_width;
  for (int64_t c = 0; c < cols; ++c) {
    const int64_t stop = std::min(width, (c + 1) * block_width);
    T value = std::fabs(row[c * block_width]);
    for (int64_t j = c * block_width + 1; j < stop; ++j) {
      value = average ? value + std::fabs(row[j])
                      : MaxOrNan(value, std::fabs(row[j]));
    }
    pooled[c] = value;
  }
}

// ModelPruningPoolBlocks: one unit of work is one row of blocks. AVG keeps
// TensorFlow's order of additions (see the op's doc).
template <typename T>
class PoolBlocksOp : public OpKernel {
 public:
  explicit PoolBlocksOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("block_height", &block_height_));
    OP_REQUIRES_OK(context, context->GetAttr("block_width", &block_width_));
    std::string pooling;
    OP_REQUIRES_OK(context, context->GetAttr("pooling", &pooling));
    average_ = pooling == "AVG";
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& values_tensor = context->input(0);
    OP_REQUIRES(context, values_tensor.dims() == 2,
                absl::InvalidArgumentError(absl::StrCat(
                    "values must be a matrix, got shape ",
                    values_tensor.shape().DebugString())));
    const int64_t height = values_tensor.dim_size(0);
    const int64_t width = values_tensor.dim_size(1);
    const int64_t bh = block_height_;
    const int64_t bw = block_width_;
    const int64_t rows = (height + bh - 1) / bh;
    const int64_t cols = (width + bw - 1) / bw;
    Tensor* pooled_tensor = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(
                                0, TensorShape({rows, cols}), &pooled_tensor));
    if (pooled_tensor->NumElements() == 0) return;
    const T* values = values_tensor.flat<T>().data();
    T* pooled = pooled_tensor->flat<T>().data();
    const bool average = average_;
    auto pass = [=](int64_t begin, int64_t end) {
      std::vector<T> row_pooled(cols);
      for (int64_t r = begin; r < end; ++r) {
        T* out = pooled + r * cols;
        std::fill_n(out, cols,
                    average ? T(0) : std::numeric_limits<T>::lowest());
        const int64_t last = std::min(height, (r + 1) * bh);
        for (int64_t i = r * bh; i < last; ++i) {
          RowPool(average, values + i * width, width, bw, row_pooled.data());
          if (average) {
            for (int64_t c = 0; c < cols; ++c) {
              out[c] += row_pooled[c] / static_cast<T>(bw);
            }
          } else {
            for (int64_t c = 0; c < cols; ++c) {
              out[c] = MaxOrNan(out[c], row_pooled[c]);
            }
          }
        }
        if (!average) continue;
        const int64_t real_rows = last - r * bh;
        for (int64_t c = 0; c < cols; ++c) {
          out[c] = out[c] / static_cast<T>(bh);
          const int64_t real_cols = std::min(width, (c + 1) * bw) - c * bw;
          if (real_rows < bh || real_cols < bw) {
            // pool_blocks' correction: a float64 factor rounded to T.
            out[c] *= static_cast<T>(static_cast<double>(bh * bw) /
                                     static_cast<double>(real_rows *
                                                         real_cols));
          }
        }
      }
    };
    auto* workers = context->device()->tensorflow_cpu_worker_threads();
    ::tensorflow::Shard(workers->num_threads, workers->workers, rows,
                        /*cost_per_unit=*/bh * width * kCostPerElement, pass);
  }

 private:
  int64_t block_height_;
  int64_t block_width_;
  bool average_;
};

// out[j] = blocks[j / kWidth] for a mask row of `width` values.
template <int kWidth>
void ExpandRowOf(const float* blocks, int64_t width, float* out) {
  const int64_t full = width / kWidth;
  for (int64_t c = 0; c < full; ++c) {
    for (int o = 0; o < kWidth; ++o) out[c * kWidth + o] = blocks[c];
  }
  for (int64_t j = full * kWidth; j < width; ++j) out[j] = blocks[full];
}

// ExpandRowOf for any block width: the widths up to 8 compiled for their own.
inline void ExpandRow(const float* blocks, int64_t width, int64_t block_width,
                      float* out) {
  switch (block_width) {
    case 1: return ExpandRowOf<1>(blocks, width, out);
    case 2: return ExpandRowOf<2>(blocks, width, out);
    case 3: return ExpandRowOf<3>(blocks, width, out);
    case 4: return ExpandRowOf<4>(blocks, width, out);
    case 5: return ExpandRowOf<5>(blocks, width, out);
    case 6: return ExpandRowOf<6>(blocks, width, out);
    case 7: return ExpandRowOf<7>(blocks, width, out);
    case 8: return ExpandRowOf<8>(blocks, width, out);
    default: break;
  }
  for (int64_t j = 0; j < width; ++j) out[j] = blocks[j / block_width];
}

// The dimensions of `shape` other than 1.
inline std::vector<int64_t> Squeezed(const TensorShape& shape) {
  std::vector<int64_t> dims;
  for (int i = 0; i < shape.dims(); ++i) {
    if (shape.dim_size(i) != 1) dims.push_back(shape.dim_size(i));
  }
  return dims;
}

// ModelPruningExpandBlocks and its in-place variant: one unit of work is one
// row of blocks.
class ExpandBlocksOp : public OpKernel {
 public:
  explicit ExpandBlocksOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("block_height", &block_height_));
    OP_REQUIRES_OK(context, context->GetAttr("block_width", &block_width_));
    OP_REQUIRES_OK(context, context->GetAttr("height", &height_));
    OP_REQUIRES_OK(context, context->GetAttr("width", &width_));
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& blocks_tensor = context->input(0);
    const int64_t bh = block_height_;
    const int64_t bw = block_width_;
    const int64_t height = height_;
    const int64_t width = width_;
    const int64_t cols = (width + bw - 1) / bw;
    OP_REQUIRES(
        context,
        blocks_tensor.dims() == 2 &&
            blocks_tensor.dim_size(0) == (height + bh - 1) / bh &&
            blocks_tensor.dim_size(1) == cols,
        absl::InvalidArgumentError(absl::StrCat(
            "block_mask must be [", (height + bh - 1) / bh, ", ", cols,
            "] for a ", height, "x", width, " mask of ", bh, "x", bw,
            " blocks, got shape ", blocks_tensor.shape().DebugString())));
    if (context->num_inputs() == 1) {
      Tensor* mask_tensor = nullptr;
      OP_REQUIRES_OK(context, context->allocate_output(
                                  0, TensorShape({height, width}),
                                  &mask_tensor));
      Expand(context, blocks_tensor, mask_tensor);
      return;
    }
    // In place: the mask variable's buffer, under its lock for the write.
    const std::vector<int64_t> squeezed =
        Squeezed(TensorShape({height, width}));
    WriteMaskVariable(
        context, 1,
        [&](const TensorShape& shape) { return Squeezed(shape) == squeezed; },
        absl::StrCat(height, "x", width, " values (up to dimensions of 1)"),
        [&](Tensor* mask_tensor) {
          Expand(context, blocks_tensor, mask_tensor);
        });
  }

 private:
  // Writes every entry of `mask_tensor` (height x width values).
  void Expand(OpKernelContext* context, const Tensor& blocks_tensor,
              Tensor* mask_tensor) {
    const int64_t bh = block_height_;
    const int64_t bw = block_width_;
    const int64_t height = height_;
    const int64_t width = width_;
    const int64_t cols = (width + bw - 1) / bw;
    if (mask_tensor->NumElements() == 0) return;
    const float* blocks = blocks_tensor.flat<float>().data();
    float* mask = mask_tensor->flat<float>().data();
    const int64_t rows = (height + bh - 1) / bh;
    auto pass = [=](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        // The block row's first mask row, then copies of it.
        float* first = mask + r * bh * width;
        ExpandRow(blocks + r * cols, width, bw, first);
        const int64_t last = std::min(height, (r + 1) * bh);
        for (int64_t i = r * bh + 1; i < last; ++i) {
          std::memcpy(mask + i * width, first, width * sizeof(float));
        }
      }
    };
    auto* workers = context->device()->tensorflow_cpu_worker_threads();
    ::tensorflow::Shard(workers->num_threads, workers->workers, rows,
                        /*cost_per_unit=*/bh * width, pass);
  }

  int64_t block_height_;
  int64_t block_width_;
  int64_t height_;
  int64_t width_;
};

#define REGISTER_KERNELS(T)                                            \
  REGISTER_KERNEL_BUILDER(Name("ModelPruningKthLargest")               \
                              .Device(DEVICE_CPU)                      \
                              .TypeConstraint<T>("T")                  \
                              .HostMemory("k"),                        \
                          KthLargestOp<T>);                            \
  REGISTER_KERNEL_BUILDER(Name("ModelPruningMaskUpdate")               \
                              .Device(DEVICE_CPU)                      \
                              .TypeConstraint<T>("T")                  \
                              .HostMemory("sparsity"),                 \
                          MaskUpdateOp<T>);                            \
  REGISTER_KERNEL_BUILDER(Name("ModelPruningMaskUpdateInPlace")        \
                              .Device(DEVICE_CPU)                      \
                              .TypeConstraint<T>("T")                  \
                              .HostMemory("sparsity"),                 \
                          MaskUpdateOp<T>);                            \
  REGISTER_KERNEL_BUILDER(Name("ModelPruningMByNMask")                 \
                              .Device(DEVICE_CPU)                      \
                              .TypeConstraint<T>("T"),                 \
                          MByNMaskOp<T>);                              \
  REGISTER_KERNEL_BUILDER(Name("ModelPruningMByNMaskInPlace")          \
                              .Device(DEVICE_CPU)                      \
                              .TypeConstraint<T>("T")                  \
                              .HostMemory("m"),                        \
                          MByNMaskOp<T>);                              \
  REGISTER_KERNEL_BUILDER(Name("ModelPruningPoolBlocks")               \
                              .Device(DEVICE_CPU)                      \
                              .TypeConstraint<T>("T"),                 \
                          PoolBlocksOp<T>);

REGISTER_KERNELS(float);
REGISTER_KERNELS(double);
#undef REGISTER_KERNELS

REGISTER_KERNEL_BUILDER(Name("ModelPruningExpandBlocks").Device(DEVICE_CPU),
                        ExpandBlocksOp);
REGISTER_KERNEL_BUILDER(
    Name("ModelPruningExpandBlocksInPlace").Device(DEVICE_CPU),
    ExpandBlocksOp);

}  // namespace
}  // namespace model_pruning

// The vector width the passes run at now, for reports and tests: "avx2",
// "sse2" or "scalar" (native_kernels.vector_isa reads it through ctypes).
extern "C" __attribute__((visibility("default"))) const char*
ModelPruningVectorIsa() {
#ifdef MODEL_PRUNING_AVX2
  if (model_pruning::UseAvx2()) return "avx2";
#endif
#ifdef __SSE2__
  return "sse2";
#else
  return "scalar";
#endif
}
