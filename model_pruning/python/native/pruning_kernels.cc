// Fused CPU kernels for one mask update: the k-th largest magnitude and the
// mask, each in one pass over the weight (docs/native_kernels.md).
//
// The TensorFlow-op pipeline (thresholds.py) materialises |w|, a cleaned copy,
// boolean temporaries and a cast mask: about six passes over the weight.
// These kernels read the weight where it lies and write only the mask.
//
// Magnitudes are "cleaned" exactly as saliency_masks._finite does: NaN -> 0,
// x -> min(x, max finite of T) (so +Inf -> max; -Inf stays, and only arises
// when take_abs is false).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/platform/mutex.h"
#include "tensorflow/core/platform/thread_annotations.h"
#include "tensorflow/core/util/work_sharder.h"

#ifdef __SSE2__
#include <emmintrin.h>
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

REGISTER_OP("ModelPruningMagnitudeMask")
    .Input("values: T")
    .Input("threshold: T")
    .Output("mask: float")
    .Attr("T: {float, double}")
    .Attr("take_abs: bool = true")
    .Attr("inclusive: bool = false")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      return absl::OkStatus();
    })
    .Doc(R"doc(
1.0 where the cleaned magnitude of `values` is above `threshold` (at or
above it when `inclusive`), else 0.0; the shape of `values`.
)doc");

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

namespace {

// Below this many values, a plain selection over a copy is as fast.
constexpr int64_t kDirectMaxSize = 1 << 14;
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
// Columns of an N:M group handled at a time (n rows of them in L1).
constexpr int64_t kColumnChunk = 256;
// Shard's cost estimate of one value of a pass (it sizes the shards).
constexpr int64_t kCostPerElement = 4;

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

// One pass over values[0, n) (v cleaned): adds #(v > high) to *above,
// raises *max_value to the largest v, and writes the v in [low, high] to
// band[0, ...) (room for n values); returns how many it wrote.
template <typename T>
int64_t ScanRangeScalar(const T* values, int64_t n, T low, T high,
                        bool take_abs, int64_t* above, T* max_value,
                        T* band) {
  int64_t count = 0;
  int64_t appended = 0;
  T largest = *max_value;
  for (int64_t i = 0; i < n; ++i) {
    const T v = Clean(values[i], take_abs);
    largest = std::max(largest, v);
    count += v > high;
    band[appended] = v;
    appended += (v >= low) & (v <= high);
  }
  *above += count;
  *max_value = largest;
  return appended;
}

template <typename T>
int64_t ScanRange(const T* values, int64_t n, T low, T high, bool take_abs,
                  int64_t* above, T* max_value, T* band) {
  return ScanRangeScalar(values, n, low, high, take_abs, above, max_value,
                         band);
}

#ifdef __SSE2__
// float32 with SSE2 (every x86-64), 16 values a step: cleaning is branch-free
// (NaN lanes zeroed, then min with FLT_MAX), the count and max stay in
// registers, and only steps that hold a band value leave the vector path,
// to append its values without branches (docs/native_kernels.md).
namespace sse {

struct Lanes {
  __m128 abs_mask, largest_finite, low, high;
};

inline __m128 CleanLanes(const Lanes& c, const float* at) {
  __m128 v = _mm_and_ps(_mm_loadu_ps(at), c.abs_mask);
  v = _mm_andnot_ps(_mm_cmpunord_ps(v, v), v);
  return _mm_min_ps(v, c.largest_finite);
}

inline __m128 InBand(const Lanes& c, __m128 v) {
  return _mm_and_ps(_mm_cmpge_ps(v, c.low), _mm_cmple_ps(v, c.high));
}

inline __m128i Above(const Lanes& c, __m128 v) {
  return _mm_castps_si128(_mm_cmpgt_ps(v, c.high));
}

}  // namespace sse

template <>
int64_t ScanRange<float>(const float* values, int64_t n, float low,
                         float high, bool take_abs, int64_t* above,
                         float* max_value, float* band) {
  constexpr int64_t kStep = 16;
  const sse::Lanes c{
      _mm_castsi128_ps(_mm_set1_epi32(
          take_abs ? 0x7fffffff : static_cast<int32_t>(0xffffffff))),
      _mm_set1_ps(std::numeric_limits<float>::max()), _mm_set1_ps(low),
      _mm_set1_ps(high)};
  const int64_t vector_end = n - n % kStep;
  int64_t appended = 0;
  __m128 max4 = _mm_set1_ps(*max_value);
  int64_t count = 0;
  int64_t i = 0;
  while (i < vector_end) {
    // int32 lane counts: flushed every 2^22 values, so they never overflow.
    const int64_t stop = std::min(vector_end, i + (int64_t{1} << 22));
    __m128i count4 = _mm_setzero_si128();
    for (; i < stop; i += kStep) {
      const __m128 v0 = sse::CleanLanes(c, values + i);
      const __m128 v1 = sse::CleanLanes(c, values + i + 4);
      const __m128 v2 = sse::CleanLanes(c, values + i + 8);
      const __m128 v3 = sse::CleanLanes(c, values + i + 12);
      max4 = _mm_max_ps(_mm_max_ps(max4, _mm_max_ps(v0, v1)),
                        _mm_max_ps(v2, v3));
      count4 = _mm_sub_epi32(count4, _mm_add_epi32(
          _mm_add_epi32(sse::Above(c, v0), sse::Above(c, v1)),
          _mm_add_epi32(sse::Above(c, v2), sse::Above(c, v3))));
      const __m128 any = _mm_or_ps(
          _mm_or_ps(sse::InBand(c, v0), sse::InBand(c, v1)),
          _mm_or_ps(sse::InBand(c, v2), sse::InBand(c, v3)));
      if (__builtin_expect(_mm_movemask_ps(any) != 0, 0)) {
        alignas(16) float lanes[kStep];
        _mm_store_ps(lanes, v0);
        _mm_store_ps(lanes + 4, v1);
        _mm_store_ps(lanes + 8, v2);
        _mm_store_ps(lanes + 12, v3);
        for (int lane = 0; lane < kStep; ++lane) {
          band[appended] = lanes[lane];
          appended += (lanes[lane] >= low) & (lanes[lane] <= high);
        }
      }
    }
    alignas(16) int32_t counts[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(counts), count4);
    count += int64_t{counts[0]} + counts[1] + counts[2] + counts[3];
  }
  alignas(16) float maxes[4];
  _mm_store_ps(maxes, max4);
  *above += count;
  *max_value = std::max(std::max(maxes[0], maxes[1]),
                        std::max(maxes[2], maxes[3]));
  return appended + ScanRangeScalar(values + i, n - i, low, high, take_abs,
                                    above, max_value, band + appended);
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

template <typename T>
class KthLargestOp : public OpKernel {
 public:
  explicit KthLargestOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("take_abs", &take_abs_));
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& values_tensor = context->input(0);
    const Tensor& k_tensor = context->input(1);
    OP_REQUIRES(context, k_tensor.dims() == 0,
                absl::InvalidArgumentError(
                    absl::StrCat("k must be a scalar, got shape ",
                                 k_tensor.shape().DebugString())));
    const int64_t size = values_tensor.NumElements();
    OP_REQUIRES(context, size > 0,
                absl::InvalidArgumentError(
                    absl::StrCat("values must not be empty; got shape ",
                                 values_tensor.shape().DebugString())));
    const T* values = values_tensor.flat<T>().data();
    const int64_t k = std::min<int64_t>(
        std::max<int64_t>(k_tensor.scalar<int32_t>()(), 1), size);

    T max_value;
    const Selection<T> result =
        size <= kDirectMaxSize
            ? SelectFromAll(values, size, k, &max_value)
            : Bracketed(context, values, size, k, &max_value);
    Output(context, 0, result.kth);
    OutputCount(context, 1, result.above);
    OutputCount(context, 2, result.at);
    Output(context, 3, max_value);
  }

 private:
  // Sample bounds (low, high) that hold the k-th largest with high odds: a
  // stratified sample of n values has about n k / N above it, within
  // 3 sqrt(n p (1 - p)) + 2 (p = k / N); stratifying only narrows that.
  void Bracket(const T* values, int64_t size, int64_t k, T* low,
               T* high) const {
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

  // The bracket the last selection left for this one (its warm start), or
  // false. Valid while the size is the same and k moved by at most what the
  // bracket allows for.
  bool WarmBracket(int64_t size, int64_t k, T* low, T* high) {
    ::tensorflow::mutex_lock lock(mu_);
    if (warm_.size != size || std::abs(k - warm_.k) > warm_.reach) {
      return false;
    }
    *low = warm_.low;
    *high = warm_.high;
    return true;
  }

  // After a selection at rank `rank` of `band` (as SelectInPlace left it,
  // from the bracket [low, high]): the next update's bracket, the values
  // `delta_` ranks either side of where k is predicted to be (k + the move
  // since the last update), or this bracket's ends where the band is
  // shorter. Weights move little between frequent updates: the next k-th
  // value is then inside, and the sample is skipped.
  void Remember(int64_t size, int64_t k, std::vector<T>* band, int64_t rank,
                T low, T high) {
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
    warm_ = Warm{size, k + move, delta / 2, next_low, next_high};
  }

  void Forget(int64_t size) {
    ::tensorflow::mutex_lock lock(mu_);
    warm_.size = -1;
    // A warm bracket that missed was too narrow: widen the next ones.
    delta_ = std::min<int64_t>(
        2 * std::max<int64_t>(delta_, size / kWarmRankDivisor),
        std::max<int64_t>(size / 16, kWarmMinDelta));
  }

  // One pass over the values with the bracket [low, high], then the
  // selection among the bracketed values. False when the bracket missed.
  bool ScanAndSelect(OpKernelContext* context, const T* values, int64_t size,
                     int64_t k, T low, T high, Selection<T>* result,
                     T* max_value) {
    // One pass, sharded: #(v > high), the values in [low, high], max(v).
    struct Shard {
      int64_t above = 0;
      T max_value = -std::numeric_limits<T>::infinity();
      // Room for every value of the shard, uninitialised: only the band's
      // few pages are ever touched.
      std::unique_ptr<T[]> band;
      int64_t band_size = 0;
    };
    auto* workers = context->device()->tensorflow_cpu_worker_threads();
    const int64_t num_shards = std::max(1, workers->num_threads) * 4;
    const int64_t shard_size = (size + num_shards - 1) / num_shards;
    std::vector<Shard> shards(num_shards);
    const bool take_abs = take_abs_;
    auto pass = [&](int64_t begin_shard, int64_t end_shard) {
      for (int64_t s = begin_shard; s < end_shard; ++s) {
        Shard& shard = shards[s];
        const int64_t begin = s * shard_size;
        const int64_t end = std::min(size, begin + shard_size);
        if (begin >= end) continue;
        shard.band.reset(new T[end - begin]);
        shard.band_size =
            ScanRange(values + begin, end - begin, low, high, take_abs,
                      &shard.above, &shard.max_value, shard.band.get());
      }
    };
    ::tensorflow::Shard(workers->num_threads, workers->workers, num_shards,
                        /*cost_per_unit=*/shard_size * kCostPerElement, pass);
    int64_t above = 0;
    int64_t band_size = 0;
    *max_value = -std::numeric_limits<T>::infinity();
    for (const Shard& shard : shards) {
      above += shard.above;
      band_size += shard.band_size;
      *max_value = std::max(*max_value, shard.max_value);
    }
    const int64_t rank = k - above;
    if (rank < 1 || rank > band_size) return false;
    std::vector<T> band;
    band.reserve(band_size);
    for (const Shard& shard : shards) {
      band.insert(band.end(), shard.band.get(),
                  shard.band.get() + shard.band_size);
    }
    *result = SelectInPlace(&band, rank);
    result->above += above;
    Remember(size, k, &band, rank, low, high);
    return true;
  }

  // Warm bracket, else the sample's, else (both missed) all values.
  Selection<T> Bracketed(OpKernelContext* context, const T* values,
                         int64_t size, int64_t k, T* max_value) {
    Selection<T> result;
    T low, high;
    if (WarmBracket(size, k, &low, &high)) {
      if (ScanAndSelect(context, values, size, k, low, high, &result,
                        max_value)) {
        return result;
      }
      Forget(size);
    }
    Bracket(values, size, k, &low, &high);
    if (ScanAndSelect(context, values, size, k, low, high, &result,
                      max_value)) {
      return result;
    }
    // The bracket missed (rare, or adversarial data): select from all.
    Forget(size);
    return SelectFromAll(values, size, k, max_value);
  }

  // The selection over a cleaned copy of every value, and their maximum.
  Selection<T> SelectFromAll(const T* values, int64_t size, int64_t k,
                             T* max_value) const {
    std::vector<T> all(size);
    for (int64_t i = 0; i < size; ++i) all[i] = Clean(values[i], take_abs_);
    *max_value = *std::max_element(all.begin(), all.end());
    return SelectInPlace(&all, k);
  }

  static void Output(OpKernelContext* context, int index, T value) {
    Tensor* out = nullptr;
    OP_REQUIRES_OK(context,
                   context->allocate_output(index, TensorShape({}), &out));
    out->scalar<T>()() = value;
  }

  static void OutputCount(OpKernelContext* context, int index,
                          int64_t value) {
    Tensor* out = nullptr;
    OP_REQUIRES_OK(context,
                   context->allocate_output(index, TensorShape({}), &out));
    out->scalar<int32_t>()() = static_cast<int32_t>(value);
  }

  // The warm start's state: `reach` is how far k may move from `k` for
  // [low, high] to be tried. Per kernel instance, i.e. per weight's update
  // op; guarded by mu_ (a kernel may run in concurrent steps).
  struct Warm {
    int64_t size = -1;
    int64_t k = 0;
    int64_t reach = 0;
    T low = 0;
    T high = 0;
  };

  bool take_abs_;
  ::tensorflow::mutex mu_;
  Warm warm_ TF_GUARDED_BY(mu_);
  // Ranks either side of the predicted k-th value that the warm bracket
  // spans; doubled after each warm miss.
  int64_t delta_ TF_GUARDED_BY(mu_) = kWarmMinDelta;
};

template <typename T>
class MagnitudeMaskOp : public OpKernel {
 public:
  explicit MagnitudeMaskOp(OpKernelConstruction* context)
      : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("take_abs", &take_abs_));
    OP_REQUIRES_OK(context, context->GetAttr("inclusive", &inclusive_));
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& values_tensor = context->input(0);
    const Tensor& threshold_tensor = context->input(1);
    OP_REQUIRES(context, threshold_tensor.dims() == 0,
                absl::InvalidArgumentError(
                    absl::StrCat("threshold must be a scalar, got shape ",
                                 threshold_tensor.shape().DebugString())));
    Tensor* mask_tensor = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(
                                0, values_tensor.shape(), &mask_tensor));
    const T* values = values_tensor.flat<T>().data();
    float* mask = mask_tensor->flat<float>().data();
    const T threshold = threshold_tensor.scalar<T>()();
    const bool take_abs = take_abs_;
    const bool inclusive = inclusive_;
    auto pass = [=](int64_t begin, int64_t end) {
      if (inclusive) {
        for (int64_t i = begin; i < end; ++i) {
          mask[i] = Clean(values[i], take_abs) >= threshold ? 1.0f : 0.0f;
        }
      } else {
        for (int64_t i = begin; i < end; ++i) {
          mask[i] = Clean(values[i], take_abs) > threshold ? 1.0f : 0.0f;
        }
      }
    };
    auto* workers = context->device()->tensorflow_cpu_worker_threads();
    ::tensorflow::Shard(workers->num_threads, workers->workers,
                        values_tensor.NumElements(), kCostPerElement, pass);
  }

 private:
  bool take_abs_;
  bool inclusive_;
};

// nm_sparsity._pairwise_keep's rule with the same comparisons (so ties and
// NaN scores give the same mask): with c_ij = [s_j > s_i],
// keep_i <=> sum_{j>i} c_ij - sum_{k<i} c_ki < m - i.
template <typename T>
class MByNMaskOp : public OpKernel {
 public:
  explicit MByNMaskOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("m", &m_));
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
    Tensor* mask_tensor = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(0, shape, &mask_tensor));
    const int64_t depth = shape.dim_size(shape.dims() - 2);
    const int64_t width = shape.dim_size(shape.dims() - 1);
    const int64_t total = shape.num_elements();
    if (total == 0) return;
    const int64_t outer = total / (depth * width);
    const int64_t groups_per_outer = (depth + n_ - 1) / n_;
    const T* scores = scores_tensor.flat<T>().data();
    float* mask = mask_tensor->flat<float>().data();
    const int64_t m = m_;
    const int64_t n = n_;
    const bool take_abs = take_abs_;
    // One unit of work: one group of n rows of one outer slice, taken in
    // column chunks whose n rows of scores and margins stay in L1. Each
    // pair i < j is compared once: c = [s_j > s_i] adds to i's margin and
    // subtracts from j's.
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
          const int64_t cols = std::min(kColumnChunk, width - col);
          for (int64_t i = 0; i < rows; ++i) {
            const T* from = group + i * width + col;
            T* to = score.data() + i * kColumnChunk;
            for (int64_t o = 0; o < cols; ++o) {
              to[o] = take_abs ? std::fabs(from[o]) : from[o];
            }
            std::fill_n(margin.data() + i * kColumnChunk, cols, 0);
          }
          for (int64_t i = 0; i < rows; ++i) {
            const T* si = score.data() + i * kColumnChunk;
            int32_t* mi = margin.data() + i * kColumnChunk;
            for (int64_t j = i + 1; j < rows; ++j) {
              const T* sj = score.data() + j * kColumnChunk;
              int32_t* mj = margin.data() + j * kColumnChunk;
              for (int64_t o = 0; o < cols; ++o) {
                const int32_t c = sj[o] > si[o];
                mi[o] += c;
                mj[o] -= c;
              }
            }
          }
          for (int64_t i = 0; i < rows; ++i) {
            const int32_t* mi = margin.data() + i * kColumnChunk;
            float* out_row = out + i * width + col;
            const int32_t limit = static_cast<int32_t>(m - i);
            for (int64_t o = 0; o < cols; ++o) {
              out_row[o] = mi[o] < limit ? 1.0f : 0.0f;
            }
          }
        }
      }
    };
    auto* workers = context->device()->tensorflow_cpu_worker_threads();
    ::tensorflow::Shard(workers->num_threads, workers->workers,
                        outer * groups_per_outer,
                        /*cost_per_unit=*/n * n * width, pass);
  }

 private:
  int64_t m_;
  int64_t n_;
  bool take_abs_;
};

#define REGISTER_KERNELS(T)                                            \
  REGISTER_KERNEL_BUILDER(Name("ModelPruningKthLargest")               \
                              .Device(DEVICE_CPU)                      \
                              .TypeConstraint<T>("T")                  \
                              .HostMemory("k"),                        \
                          KthLargestOp<T>);                            \
  REGISTER_KERNEL_BUILDER(Name("ModelPruningMagnitudeMask")            \
                              .Device(DEVICE_CPU)                      \
                              .TypeConstraint<T>("T"),                 \
                          MagnitudeMaskOp<T>);                         \
  REGISTER_KERNEL_BUILDER(Name("ModelPruningMByNMask")                 \
                              .Device(DEVICE_CPU)                      \
                              .TypeConstraint<T>("T"),                 \
                          MByNMaskOp<T>);

REGISTER_KERNELS(float);
REGISTER_KERNELS(double);
#undef REGISTER_KERNELS

}  // namespace
}  // namespace model_pruning
