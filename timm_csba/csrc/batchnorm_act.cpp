// Training-mode BatchNorm followed by a (leaky) ReLU, fused, for channels-last CPU tensors in float32 or bfloat16.
//
// PyTorch runs the pair as three passes over the map forward (statistics; normalise, a read and a write; the
// activation, another read and write) and three backward (the activation's gradient, a read and a write; then
// BatchNorm's reductions and its input gradient). Here it is two and two: the activation is applied as the
// normalised value is written, and its gradient is recomputed from the saved input where BatchNorm's backward
// reads it anyway, so a read and a write of the map are saved each way. A channels-last map is a
// [rows, C] matrix with rows = N * H * W, so every loop runs over contiguous channels, which the compiler vectorises.
//
// In eval mode, with the running statistics folded into a per-channel scale and shift, the pair is one pass (PyTorch:
// two, BatchNorm then the activation).
//
// Statistics and gradient sums are added in float over blocks of 64 rows, then in double: PyTorch's float
// accumulation over the 400,000 rows of a 112x112 map at batch 32 loses digits this does not.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace {

// bfloat16 is handled as its 16 bits so that the loops stay plain integer and float arithmetic the compiler
// vectorises (c10::BFloat16's conversions do not).
inline float load(const float* p, int64_t i) { return p[i]; }
inline float load(const uint16_t* p, int64_t i) {
  uint32_t bits = static_cast<uint32_t>(p[i]) << 16;
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}
inline void store(float* p, int64_t i, float value) { p[i] = value; }
inline void store(uint16_t* p, int64_t i, float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  bits += 0x7FFFu + ((bits >> 16) & 1u);  // round to nearest even, as PyTorch's float -> bfloat16 (finite values)
  p[i] = static_cast<uint16_t>(bits >> 16);
}

constexpr int64_t kBlockRows = 64;   // rows summed in float before the sums go into double
constexpr int64_t kGrainRows = 1024;  // at::parallel_for grain

template <typename T>
void sum_block(const T* __restrict__ x, int64_t n, int64_t C, float* __restrict__ s, float* __restrict__ sq) {
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < C; ++c) {
      float v = load(x + r * C, c);
      s[c] += v;
      sq[c] += v * v;
    }
}

template <typename T>
void normalize_act_rows(const T* __restrict__ x, T* __restrict__ y, int64_t n, int64_t C,
                        const float* __restrict__ scale, const float* __restrict__ shift, float slope) {
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < C; ++c) {
      float z = load(x + r * C, c) * scale[c] + shift[c];
      store(y + r * C, c, z > 0.f ? z : z * slope);
    }
}

// per channel: sum of dz and of dz * (x - mean), where dz is the gradient before the activation
template <typename T>
void grad_sum_block(const T* __restrict__ x, const T* __restrict__ dy, int64_t n, int64_t C,
                    const float* __restrict__ scale, const float* __restrict__ shift, const float* __restrict__ mean,
                    float slope, float* __restrict__ s, float* __restrict__ sx) {
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < C; ++c) {
      float xv = load(x + r * C, c), g = load(dy + r * C, c);
      float dz = xv * scale[c] + shift[c] > 0.f ? g : g * slope;
      s[c] += dz;
      sx[c] += dz * (xv - mean[c]);
    }
}

// dx = scale * dz - k * (x - mean) - a, with k and a folding BatchNorm's two mean terms per channel
template <typename T>
void input_grad_rows(const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ dx, int64_t n, int64_t C,
                     const float* __restrict__ scale, const float* __restrict__ shift, const float* __restrict__ mean,
                     const float* __restrict__ k, const float* __restrict__ a, float slope) {
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < C; ++c) {
      float xv = load(x + r * C, c), g = load(dy + r * C, c);
      float dz = xv * scale[c] + shift[c] > 0.f ? g : g * slope;
      store(dx + r * C, c, scale[c] * dz - k[c] * (xv - mean[c]) - a[c]);
    }
}

// Two per-channel sums over all rows: `block` adds rows [r0, r0 + n) into float sums, threads add blocks in double.
template <typename Block>
void channel_sums(int64_t rows, int64_t C, double* first, double* second, const Block& block) {
  const int64_t threads = at::get_num_threads();
  std::vector<double> partial(threads * 2 * C, 0.0);
  at::parallel_for(0, rows, kGrainRows, [&](int64_t begin, int64_t end) {
    double* p = partial.data() + at::get_thread_num() * 2 * C;
    std::vector<float> s(C), s2(C);
    for (int64_t r0 = begin; r0 < end; r0 += kBlockRows) {
      std::fill(s.begin(), s.end(), 0.f);
      std::fill(s2.begin(), s2.end(), 0.f);
      block(r0, std::min(end, r0 + kBlockRows) - r0, s.data(), s2.data());
      for (int64_t c = 0; c < C; ++c) {
        p[c] += s[c];
        p[C + c] += s2[c];
      }
    }
  });
  std::fill(first, first + C, 0.0);
  std::fill(second, second + C, 0.0);
  for (int64_t t = 0; t < threads; ++t)
    for (int64_t c = 0; c < C; ++c) {
      first[c] += partial[t * 2 * C + c];
      second[c] += partial[t * 2 * C + C + c];
    }
}

// a channels-last [N, C, H, W] tensor as the [N * H * W, C] matrix it is in memory
at::Tensor as_rows(const at::Tensor& t) { return t.permute({0, 2, 3, 1}).reshape({-1, t.size(1)}); }

template <typename T>
const T* rows_ptr(const at::Tensor& rows) { return reinterpret_cast<const T*>(rows.data_ptr()); }
template <typename T>
T* mutable_rows_ptr(const at::Tensor& rows) { return reinterpret_cast<T*>(rows.data_ptr()); }

// act(input * scale + shift) per channel into a new channels-last map: the last pass of the training forward, and
// the whole eval forward
template <typename T>
at::Tensor scale_shift_act(const at::Tensor& input, const float* scale, const float* shift, float slope) {
  const at::Tensor xr = as_rows(input);
  const int64_t C = xr.size(1);
  const T* x = rows_ptr<T>(xr);
  at::Tensor output = at::empty_like(input, at::MemoryFormat::ChannelsLast);
  T* y = mutable_rows_ptr<T>(as_rows(output));
  at::parallel_for(0, xr.size(0), kGrainRows, [&](int64_t begin, int64_t end) {
    normalize_act_rows(x + begin * C, y + begin * C, end - begin, C, scale, shift, slope);
  });
  return output;
}

template <typename T>
at::Tensor forward_impl(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, at::Tensor& mean,
                        at::Tensor& invstd, at::Tensor& var, double eps, float slope) {
  const at::Tensor xr = as_rows(input);
  const int64_t rows = xr.size(0), C = xr.size(1);
  const T* x = rows_ptr<T>(xr);
  std::vector<double> sum(C), sum_sq(C);
  channel_sums(rows, C, sum.data(), sum_sq.data(),
               [&](int64_t r0, int64_t n, float* s, float* s2) { sum_block(x + r0 * C, n, C, s, s2); });

  const float* w = weight.data_ptr<float>();
  const float* b = bias.data_ptr<float>();
  float *m = mean.data_ptr<float>(), *is = invstd.data_ptr<float>(), *v = var.data_ptr<float>();
  std::vector<float> scale(C), shift(C);
  for (int64_t c = 0; c < C; ++c) {
    const double mu = sum[c] / rows, biased_var = std::max(sum_sq[c] / rows - mu * mu, 0.0);
    const double inv = 1.0 / std::sqrt(biased_var + eps);
    m[c] = mu;
    v[c] = biased_var;
    is[c] = inv;
    scale[c] = w[c] * inv;
    shift[c] = b[c] - mu * w[c] * inv;
  }
  return scale_shift_act<T>(input, scale.data(), shift.data(), slope);
}

template <typename T>
std::vector<at::Tensor> backward_impl(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
                                      const at::Tensor& bias, const at::Tensor& mean, const at::Tensor& invstd,
                                      float slope) {
  const at::Tensor grad = grad_output.to(input.scalar_type()).contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor xr = as_rows(input), gr = as_rows(grad);
  const int64_t rows = xr.size(0), C = xr.size(1);
  const T* x = rows_ptr<T>(xr);
  const T* dy = rows_ptr<T>(gr);
  const float *w = weight.data_ptr<float>(), *b = bias.data_ptr<float>();
  const float *m = mean.data_ptr<float>(), *is = invstd.data_ptr<float>();
  std::vector<float> scale(C), shift(C), k(C), a(C);
  for (int64_t c = 0; c < C; ++c) {
    scale[c] = w[c] * is[c];
    shift[c] = b[c] - m[c] * w[c] * is[c];
  }
  std::vector<double> sum_dz(C), sum_dz_xc(C);
  channel_sums(rows, C, sum_dz.data(), sum_dz_xc.data(), [&](int64_t r0, int64_t n, float* s, float* sx) {
    grad_sum_block(x + r0 * C, dy + r0 * C, n, C, scale.data(), shift.data(), m, slope, s, sx);
  });

  const auto options = input.options().dtype(at::kFloat);
  at::Tensor grad_weight = at::empty({C}, options), grad_bias = at::empty({C}, options);
  float *gw = grad_weight.data_ptr<float>(), *gb = grad_bias.data_ptr<float>();
  for (int64_t c = 0; c < C; ++c) {
    const double inv = is[c], mean_dz = sum_dz[c] / rows, mean_dz_xc = sum_dz_xc[c] / rows;
    gb[c] = sum_dz[c];
    gw[c] = sum_dz_xc[c] * inv;
    // dx = w * inv * (dz - mean(dz) - (x - mean) * inv^2 * mean(dz * (x - mean)))
    k[c] = w[c] * inv * inv * inv * mean_dz_xc;
    a[c] = w[c] * inv * mean_dz;
  }
  at::Tensor grad_input = at::empty_like(input, at::MemoryFormat::ChannelsLast);
  T* dx = mutable_rows_ptr<T>(as_rows(grad_input));
  at::parallel_for(0, rows, kGrainRows, [&](int64_t begin, int64_t end) {
    input_grad_rows(x + begin * C, dy + begin * C, dx + begin * C, end - begin, C, scale.data(), shift.data(), m,
                    k.data(), a.data(), slope);
  });
  return {grad_input, grad_weight, grad_bias};
}

void check_inputs(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias) {
  TORCH_CHECK(input.device().is_cpu() && input.dim() == 4 && input.is_contiguous(at::MemoryFormat::ChannelsLast),
              "batchnorm_act: input must be a channels-last 4-D CPU tensor");
  TORCH_CHECK(input.scalar_type() == at::kFloat || input.scalar_type() == at::kBFloat16,
              "batchnorm_act: input must be float32 or bfloat16");
  TORCH_CHECK(weight.scalar_type() == at::kFloat && bias.scalar_type() == at::kFloat && weight.is_contiguous() &&
                  bias.is_contiguous() && weight.numel() == input.size(1) && bias.numel() == input.size(1),
              "batchnorm_act: the per-channel parameters must be contiguous float32 vectors of the input's channels");
}

}  // namespace

// Returns the activated output; fills mean, invstd and the biased variance (float32, one per channel).
at::Tensor forward(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, at::Tensor mean,
                   at::Tensor invstd, at::Tensor var, double eps, double slope) {
  check_inputs(input, weight, bias);
  if (input.scalar_type() == at::kBFloat16)
    return forward_impl<uint16_t>(input, weight, bias, mean, invstd, var, eps, static_cast<float>(slope));
  return forward_impl<float>(input, weight, bias, mean, invstd, var, eps, static_cast<float>(slope));
}

// Returns (grad_input, grad_weight, grad_bias).
std::vector<at::Tensor> backward(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
                                 const at::Tensor& bias, const at::Tensor& mean, const at::Tensor& invstd,
                                 double slope) {
  check_inputs(input, weight, bias);
  if (input.scalar_type() == at::kBFloat16)
    return backward_impl<uint16_t>(grad_output, input, weight, bias, mean, invstd, static_cast<float>(slope));
  return backward_impl<float>(grad_output, input, weight, bias, mean, invstd, static_cast<float>(slope));
}

// act(input * scale + shift), scale and shift per channel: BatchNorm with its running statistics folded in, no grad.
at::Tensor inference(const at::Tensor& input, const at::Tensor& scale, const at::Tensor& shift, double slope) {
  check_inputs(input, scale, shift);
  if (input.scalar_type() == at::kBFloat16)
    return scale_shift_act<uint16_t>(input, scale.data_ptr<float>(), shift.data_ptr<float>(), static_cast<float>(slope));
  return scale_shift_act<float>(input, scale.data_ptr<float>(), shift.data_ptr<float>(), static_cast<float>(slope));
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "fused training-mode BatchNorm + leaky ReLU, forward");
  m.def("backward", &backward, "fused training-mode BatchNorm + leaky ReLU, backward");
  m.def("inference", &inference, "eval-mode BatchNorm (folded into scale and shift) + leaky ReLU, no grad");
}
