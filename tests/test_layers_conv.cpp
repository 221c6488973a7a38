// Convolution: hand-worked values, the fast kernels (im2col + GEMM in chunks, pointwise,
// grouped, depthwise) against a naive float64 reference in many geometries, and float64
// gradient checks over input, weight and bias.
#include <cmath>

#include "conv_params.h"
#include "core/cpu/conv/routes.h"
#include "core/ops.h"
#include "core/parallel.h"
#include "core/random.h"
#include "gradcheck.h"

using namespace ag;
using ag::testing::geometry;
using ag::testing::random_leaf;

namespace {

// The textbook loops: out[n, o, y, x] = b[o] + sum w[o, c', i, j] x[n, g*cg + c', y*s - p + i*d, ...].
struct NaiveConv {
  Shape xs, ws;
  Conv2dParams p;
  int64_t ho, wo, cg, cog;
  NaiveConv(const Shape& x_shape, const Shape& w_shape, const Conv2dParams& prm)
      : xs(x_shape), ws(w_shape), p(prm) {
    ho = conv_out_size(xs[2], ws[2], p.stride_h, p.pad_h, p.dilation_h);
    wo = conv_out_size(xs[3], ws[3], p.stride_w, p.pad_w, p.dilation_w);
    cg = xs[1] / p.groups;
    cog = ws[0] / p.groups;
  }
  // Calls f(x_index, w_index, out_index) for every multiply-add of the convolution.
  template <typename F>
  void each(F&& f) const {
    for (int64_t n = 0; n < xs[0]; ++n)
      for (int64_t o = 0; o < ws[0]; ++o)
        for (int64_t y = 0; y < ho; ++y)
          for (int64_t xx = 0; xx < wo; ++xx)
            for (int64_t c = 0; c < cg; ++c)
              for (int64_t i = 0; i < ws[2]; ++i)
                for (int64_t j = 0; j < ws[3]; ++j) {
                  const int64_t ih = y * p.stride_h - p.pad_h + i * p.dilation_h;
                  const int64_t iw = xx * p.stride_w - p.pad_w + j * p.dilation_w;
                  if (ih < 0 || ih >= xs[2] || iw < 0 || iw >= xs[3]) continue;
                  const int64_t ci = (o / cog) * cg + c;
                  f(((n * xs[1] + ci) * xs[2] + ih) * xs[3] + iw, ((o * cg + c) * ws[2] + i) * ws[3] + j,
                    ((n * ws[0] + o) * ho + y) * wo + xx);
                }
  }
};

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol,
                 const char* what) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::abs(got[i] - want[i]) / (1 + std::abs(want[i]));
    if (err > worst) worst = err, at = i;
  }
  INFO(what << ": worst relative error " << worst << " at " << at << " (got " << got[at] << ", want "
            << want[at] << ")");
  CHECK(worst <= tol);
}

// Calls of the Winograd route (AVX2 builds) in a pass so far.
uint64_t winograd_calls(cpu::ConvPass pass) {
  for (const auto& c : cpu::conv_route_counts())
    if (c.pass == pass && std::string(c.route) == "winograd") return c.calls;
  return 0;
}

// Runs the three kernels in float32 and compares with the naive loops in float64.
void check_against_naive(const Shape& xs, const Shape& ws, const Conv2dParams& p, bool with_bias) {
  CAPTURE(shape_str(xs));
  CAPTURE(shape_str(ws));
  CAPTURE(p.stride_h);
  CAPTURE(p.pad_h);
  CAPTURE(p.dilation_h);
  CAPTURE(p.groups);
  NaiveConv ref(xs, ws, p);
  Tensor x = Tensor::uniform(xs, -1, 1), w = Tensor::uniform(ws, -1, 1);
  Tensor b = with_bias ? Tensor::uniform({ws[0]}, -1, 1) : Tensor();
  Shape os{xs[0], ws[0], ref.ho, ref.wo};
  Tensor g = Tensor::uniform(os, -1, 1);
  std::vector<double> xv = x.to_vector(), wv = w.to_vector(), gv = g.to_vector();
  std::vector<double> out(shape_numel(os), 0.0), gx(xv.size(), 0.0), gw(wv.size(), 0.0), gb(ws[0], 0.0);
  if (with_bias) {
    std::vector<double> bv = b.to_vector();
    for (size_t i = 0; i < out.size(); ++i) out[i] = bv[(i / (ref.ho * ref.wo)) % ws[0]];
  }
  ref.each([&](int64_t xi, int64_t wi, int64_t oi) {
    out[oi] += xv[xi] * wv[wi];
    gx[xi] += wv[wi] * gv[oi];
    gw[wi] += xv[xi] * gv[oi];
  });
  for (size_t i = 0; i < gv.size(); ++i) gb[(i / (ref.ho * ref.wo)) % ws[0]] += gv[i];

  Tensor y = Tensor::empty(os), kx = Tensor::empty(xs), kw = Tensor::empty(ws), kb = Tensor::empty({ws[0]});
  using cpu::ConvPass;
  const uint64_t wf = winograd_calls(ConvPass::forward), wi = winograd_calls(ConvPass::input_grad),
                 ww = winograd_calls(ConvPass::weight_grad);
  conv2d_forward(y, x, w, b, p);
  conv2d_backward_input(kx, g, w, p);
  conv2d_backward_weight(kw, g, x, p);
  conv2d_backward_bias(kb, g);
  // float32 rounding grows with the length of each sum. Winograd's F(4x4, 3x3) (AVX2
  // builds) sums transformed values up to about 100 times the inputs' scale that cancel
  // back down, so its errors are 10-50 times the direct sum's (still below 1e-4 of the
  // outputs' scale); a wrong transform coefficient is off by O(1).
  auto tol = [](double terms, bool winograd) {
    return winograd ? std::max(2e-4, 1e-5 * std::sqrt(terms)) : std::max(1e-5, 2e-8 * terms);
  };
  check_close(y.to_vector(), out, tol(ref.cg * ws[2] * ws[3], winograd_calls(ConvPass::forward) > wf),
              "forward");
  check_close(kx.to_vector(), gx, tol(ws[0] * ws[2] * ws[3], winograd_calls(ConvPass::input_grad) > wi),
              "input gradient");
  check_close(kw.to_vector(), gw,
              tol(xs[0] * ref.ho * ref.wo, winograd_calls(ConvPass::weight_grad) > ww) * 10,
              "weight gradient");
  check_close(kb.to_vector(), gb, tol(xs[0] * ref.ho * ref.wo, false) * 10, "bias gradient");
}

}  // namespace

TEST_CASE("conv2d: a 3x3 Sobel filter worked by hand") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor w = Tensor::from_vector({1, 0, -1, 2, 0, -2, 1, 0, -1}, {1, 1, 3, 3});
  // padding 1: out(i, j) = sum_a c_a (x[i+a-1][j-1] - x[i+a-1][j+1]), c = (1, 2, 1)
  CHECK(conv2d(x, w, Tensor(), 1, 1).to_vector() == std::vector<double>{-9, -6, 9, -20, -8, 20, -21, -6, 21});
  // stride 2 keeps the corners; the bias is added everywhere
  Tensor b = Tensor::from_vector({0.5}, {1});
  CHECK(conv2d(x, w, b, 2, 1).to_vector() == std::vector<double>{-8.5, 9.5, -20.5, 21.5});
  // no padding: only the centre, -8
  CHECK(conv2d(x, w, Tensor(), 1, 0).to_vector() == std::vector<double>{-8});
}

TEST_CASE("conv2d: two input channels, two filters, by hand") {
  // channel 0 = 1..4, channel 1 = all 10; filter 0 sums channel 0, filter 1 takes
  // channel 1's top-left minus channel 0's bottom-right (2x2 kernel, output 1x1).
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 10, 10, 10, 10}, {1, 2, 2, 2});
  Tensor w = Tensor::from_vector({1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, -1, 1, 0, 0, 0}, {2, 2, 2, 2});
  CHECK(conv2d(x, w).to_vector() == std::vector<double>{10, 6});
  // dilation 2 on a 3x3 input with a 2x2 kernel reads the four corners
  Tensor x3 = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor w3 = Tensor::from_vector({1, 10, 100, 1000}, {1, 1, 2, 2});
  CHECK(conv2d(x3, w3, Tensor(), 1, 0, 2).to_vector() == std::vector<double>{1 + 30 + 700 + 9000});
}

TEST_CASE("conv2d: depthwise by hand") {
  // groups == channels: each channel is filtered by its own kernel, no mixing.
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9, 2, 4, 6, 8, 10, 12, 14, 16, 18}, {1, 2, 3, 3});
  Tensor w = Tensor::from_vector({1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, -1, 0, 0, 0, 0}, {2, 1, 3, 3});
  CHECK(conv2d(x, w, Tensor(), 1, 0, 1, 2).to_vector() == std::vector<double>{45, -10});
  // with padding 1 the first channel's corner sees a 2x2 block: 1 + 2 + 4 + 5
  CHECK(conv2d(x, w, Tensor(), 1, 1, 1, 2).to_vector()[0] == 12);
}

// The im2col + BLAS route runs whole chunks of samples on the OpenMP threads, each thread
// summing its chunks' weight gradients before the threads' sums are added. Grouped shapes
// (no other dense route takes them, with or without AVX-512): 33x33 planes make one-sample
// chunks (5 over the threads, unevenly), 6x6 planes chunks capped at a thread's share.
TEST_CASE("conv2d's im2col route gives the naive loops' values on 1, 2 and 3 threads") {
  manual_seed(17);
  const int saved = num_threads();
  for (int threads : {1, 2, 3}) {
    CAPTURE(threads);
    set_num_threads(threads);
    check_against_naive({5, 4, 33, 33}, {6, 2, 3, 3}, geometry(1, 1, 1, 2), true);
    check_against_naive({7, 4, 6, 6}, {6, 2, 3, 3}, geometry(1, 1, 1, 2), false);
    check_against_naive({3, 6, 40, 40}, {4, 3, 1, 1}, geometry(1, 0, 1, 2), false);  // pointwise, in place
    // stride 1 with 8 or more channels a group: the input gradient as a forward pass over
    // grad_out with the kernel flipped (dilated, padded by 2 of 4; unpadded)
    check_against_naive({2, 16, 9, 11}, {6, 8, 3, 3}, geometry(1, 2, 2, 2), true);
    check_against_naive({3, 16, 7, 7}, {4, 8, 3, 3}, geometry(1, 0, 1, 2), false);
  }
  set_num_threads(saved);
}

TEST_CASE("conv2d kernels match the naive loops in float32") {
  manual_seed(7);
  // im2col + GEMM: one sample per chunk (32x32 planes) and several (small planes)
  check_against_naive({2, 3, 32, 32}, {4, 3, 3, 3}, geometry(1, 1, 1, 1), true);
  check_against_naive({5, 6, 6, 6}, {8, 6, 3, 3}, geometry(1, 1, 1, 1), false);
  check_against_naive({3, 4, 9, 7}, {6, 4, 3, 3}, geometry(2, 1, 1, 1), true);
  check_against_naive({2, 4, 9, 9}, {4, 4, 3, 3}, geometry(1, 2, 2, 1), false);
  check_against_naive({3, 4, 7, 8}, {6, 2, 3, 3}, geometry(1, 1, 1, 2), true);
  check_against_naive({2, 5, 11, 11}, {3, 5, 5, 5}, geometry(3, 2, 1, 1), false);
  check_against_naive({4, 3, 5, 5}, {2, 3, 4, 2}, geometry(1, 0, 1, 1), true);  // non-square kernel
  // strided input gradients go through per-phase sub-convolutions: padding 0, even
  // kernels, stride 3, dilation with stride (the fallback)
  check_against_naive({2, 3, 9, 10}, {5, 3, 3, 3}, geometry(2, 0, 1, 1), false);
  check_against_naive({2, 3, 8, 8}, {4, 3, 2, 2}, geometry(2, 0, 1, 1), true);
  check_against_naive({1, 2, 13, 12}, {3, 2, 3, 3}, geometry(3, 1, 1, 1), false);
  check_against_naive({2, 2, 11, 11}, {3, 2, 3, 3}, geometry(2, 1, 2, 1), false);
  check_against_naive({3, 20, 17, 17}, {24, 20, 3, 3}, geometry(2, 1, 1, 1), true);  // several panels
  // stride 2 on ResNet-20's 32x32 planes (AVX2 build: panels packed two vectors at a time,
  // the input gradient by phases, the weight gradient's dot products over two passes of 8
  // panels)
  check_against_naive({3, 16, 32, 32}, {32, 16, 3, 3}, geometry(2, 1, 1, 1), false);
  // stride 3 with a 2x2 kernel: grad_x's rows and columns 2 mod 3 get no tap (zeros)
  check_against_naive({2, 3, 10, 11}, {4, 3, 2, 2}, geometry(3, 0, 1, 1), true);
  // 8+ input channels at stride 1 (the AVX2 route's input gradient as a flipped forward
  // pass): 13-wide rows (runs off the 8-lane grid, a partial last panel), dilation 2
  check_against_naive({2, 8, 7, 13}, {5, 8, 3, 3}, geometry(1, 1, 1, 1), true);
  check_against_naive({2, 16, 9, 9}, {6, 16, 3, 3}, geometry(1, 2, 2, 1), false);
  // output rows a multiple of 16 wide (B read in place, tap by tap): padding 2 with
  // dilation 2, 5x5 with stride-2 phases of width 16, more than 256 input channels
  check_against_naive({2, 5, 18, 16}, {6, 5, 3, 3}, geometry(1, 2, 2, 1), true);
  check_against_naive({2, 3, 32, 32}, {4, 3, 5, 5}, geometry(2, 2, 1, 1), false);
  check_against_naive({1, 300, 4, 16}, {13, 300, 3, 3}, geometry(1, 1, 1, 1), true);
  check_against_naive({3, 7, 16, 16}, {29, 7, 1, 1}, geometry(1, 0, 1, 1), false);
  // "same" convolutions on 8-, 4- and 2-wide planes: a 16-lane run covers whole rows
  check_against_naive({3, 5, 8, 8}, {7, 5, 3, 3}, geometry(1, 1, 1, 1), true);
  check_against_naive({2, 6, 4, 4}, {13, 6, 3, 3}, geometry(1, 1, 1, 1), false);
  check_against_naive({3, 4, 8, 8}, {5, 4, 5, 5}, geometry(1, 2, 1, 1), true);
  check_against_naive({2, 4, 8, 8}, {3, 4, 3, 3}, geometry(1, 2, 2, 1), false);
  check_against_naive({8, 4, 2, 2}, {3, 4, 3, 3}, geometry(1, 1, 1, 1), true);
  // 3x3 stride-1 weight gradients as dot products (AVX2 build): output channels 5 and 7
  // (tiles of 3 with 2 and 1 left), several sample chunks on two threads, padding 0 and 2
  check_against_naive({5, 4, 16, 16}, {5, 4, 3, 3}, geometry(1, 1, 1, 1), true);
  check_against_naive({3, 16, 8, 8}, {7, 16, 3, 3}, geometry(1, 1, 1, 1), false);
  check_against_naive({7, 8, 32, 32}, {16, 8, 3, 3}, geometry(1, 1, 1, 1), false);
  check_against_naive({2, 3, 10, 10}, {4, 3, 3, 3}, geometry(1, 0, 1, 1), true);
  check_against_naive({2, 3, 6, 6}, {4, 3, 3, 3}, geometry(1, 2, 1, 1), false);
  // Winograd (AVX2 build: 3x3 stride 1, 8+ input channels, rows 7+ wide, C_out * C_in <=
  // 256 * 256; the input gradient where the flipped pass qualifies), F(2x2, 3x3) unless
  // noted: odd output planes (half tiles), output channels 6 (a block of 4 and 2 left),
  // padding 0, 1 and 2 (the flipped pass pads by 2 - p), 17 tiles a row (a partial vector,
  // blocks of 7 rows, a partial last block; F(4x4, 3x3) forward), 64 x 64 channels on 8x8
  // planes (blocks across samples; rows of 4 tiles, two tile rows a vector), 96 -> 130
  // channels (weight-gradient passes over 16 input channels at a time; blocks of 5 tile
  // rows, so that one starts mid-sample after another sample's rows filled the scratch: the
  // paired rows' padding must not read them), rows of 65 tiles (wider than a block's target)
  check_against_naive({3, 8, 7, 13}, {6, 8, 3, 3}, geometry(1, 1, 1, 1), true);
  check_against_naive({2, 16, 9, 9}, {8, 16, 3, 3}, geometry(1, 0, 1, 1), false);
  check_against_naive({2, 12, 6, 6}, {10, 12, 3, 3}, geometry(1, 2, 1, 1), true);
  check_against_naive({5, 16, 34, 34}, {16, 16, 3, 3}, geometry(1, 1, 1, 1), true);
  check_against_naive({9, 64, 8, 8}, {64, 64, 3, 3}, geometry(1, 1, 1, 1), false);
  check_against_naive({4, 96, 8, 8}, {130, 96, 3, 3}, geometry(1, 1, 1, 1), true);
  check_against_naive({1, 32, 3, 130}, {8, 32, 3, 3}, geometry(1, 1, 1, 1), true);
  // its weight gradient's 2 x 4 tiles with a row and two columns left (5 x 10 channels)
  check_against_naive({2, 10, 6, 9}, {5, 10, 3, 3}, geometry(1, 1, 1, 1), false);
  // F(4x4, 3x3) (outputs 29+ wide, or 13+ wide with 128+ input channels; weight gradients
  // with 64+ input channels): partial tiles at the right and bottom edges, padding 0
  check_against_naive({2, 64, 14, 13}, {12, 64, 3, 3}, geometry(1, 1, 1, 1), true);
  check_against_naive({3, 128, 13, 18}, {9, 128, 3, 3}, geometry(1, 0, 1, 1), false);
  // pointwise (the GEMM reads the input directly when a chunk holds one sample)
  check_against_naive({2, 8, 32, 32}, {5, 8, 1, 1}, geometry(1, 0, 1, 1), true);
  check_against_naive({6, 8, 4, 4}, {10, 8, 1, 1}, geometry(1, 0, 1, 1), false);
  check_against_naive({3, 8, 4, 4}, {8, 2, 1, 1}, geometry(1, 0, 1, 4), false);
  check_against_naive({2, 6, 9, 9}, {4, 6, 1, 1}, geometry(2, 0, 1, 1), false);
  // depthwise: stride 1 and 2, 3x3 and 5x5, a channel multiplier, wide rows (> 16)
  check_against_naive({2, 4, 20, 19}, {4, 1, 3, 3}, geometry(1, 1, 1, 4), true);
  check_against_naive({2, 4, 9, 9}, {4, 1, 5, 5}, geometry(2, 2, 1, 4), false);
  check_against_naive({2, 3, 8, 8}, {6, 1, 3, 3}, geometry(1, 1, 1, 3), true);
  check_against_naive({1, 2, 10, 34}, {2, 1, 3, 3}, geometry(2, 1, 1, 2), false);
  check_against_naive({1, 2, 10, 10}, {2, 1, 3, 3}, geometry(3, 2, 2, 2), false);
  // depthwise with 16k channels (channels-last in cache): every plane size of the models,
  // stride 2, 5x5, dilation
  check_against_naive({3, 32, 16, 16}, {32, 1, 3, 3}, geometry(1, 1, 1, 32), true);
  check_against_naive({2, 48, 9, 9}, {48, 1, 5, 5}, geometry(2, 2, 1, 48), false);
  check_against_naive({5, 16, 2, 2}, {16, 1, 5, 5}, geometry(1, 2, 1, 16), true);
  check_against_naive({2, 32, 7, 6}, {32, 1, 3, 3}, geometry(2, 1, 1, 32), false);
  check_against_naive({2, 16, 9, 9}, {16, 1, 3, 3}, geometry(1, 2, 2, 16), true);
  check_against_naive({1, 1024, 4, 4}, {1024, 1, 3, 3}, geometry(1, 1, 1, 1024), false);
  check_against_naive({2, 16, 16, 20}, {16, 1, 5, 5}, geometry(1, 2, 1, 16), true);  // 5x5, rows in place
  check_against_naive({2, 3, 18, 17}, {3, 1, 3, 3}, geometry(1, 0, 1, 3), false);    // no padding
}

TEST_CASE("depthwise float32 fast paths match the naive loops") {
  manual_seed(13);
  // stride 2 on rows 16-128 wide (even/odd split forward, per-phase input gradient,
  // streamed weight gradient): 3x3 and 5x5, odd and even sizes, batch 1, a bias or not
  for (int64_t w : {31, 32, 33, 34, 47, 64, 97})
    for (int64_t k : {3, 5}) {
      CAPTURE(w);
      check_against_naive({2, 16, 9 + w % 4, w}, {16, 1, k, k}, geometry(2, k / 2, 1, 16), w % 2 == 1);
    }
  check_against_naive({1, 3, 33, 35}, {3, 1, 3, 3}, geometry(2, 0, 1, 3), true);   // no padding
  check_against_naive({1, 5, 20, 40}, {5, 1, 5, 5}, geometry(2, 4, 1, 5), false);  // padding 4
  check_against_naive({3, 2, 8, 32}, {2, 1, 3, 3}, geometry(2, 2, 1, 2), true);
  // stride 2 on 8-15 wide output rows (16x16 inputs and odd neighbours)
  for (int64_t w : {15, 16, 17, 22})
    for (int64_t k : {3, 5}) {
      CAPTURE(w);
      check_against_naive({w % 2 ? 1 : 3, 16, w, w}, {16, 1, k, k}, geometry(2, k / 2, 1, 16), w % 2 == 0);
    }
  // big enough to run on several threads (each takes a contiguous range of planes)
  check_against_naive({6, 32, 32, 32}, {32, 1, 3, 3}, geometry(2, 1, 1, 32), true);
  check_against_naive({5, 32, 32, 32}, {32, 1, 5, 5}, geometry(1, 2, 1, 32), false);
  // stride 1 on wide rows: dilation (masked weight gradient), batch 1, odd heights
  check_against_naive({2, 3, 18, 20}, {3, 1, 3, 3}, geometry(1, 2, 2, 3), false);
  check_against_naive({1, 7, 5, 16}, {7, 1, 5, 5}, geometry(1, 2, 1, 7), true);
  check_against_naive({1, 4, 33, 130}, {4, 1, 3, 3}, geometry(1, 1, 1, 4), false);  // rows > 128
  // "same" 3x3 and 5x5 convolutions on every plane width 2..32 (flat vectors for planes
  // of 4, 16, 64 floats; rows or channels-last for the rest), batch 1 and 3
  for (int64_t w = 2; w <= 32; ++w)
    for (int64_t k : {3, 5}) {
      CAPTURE(w);
      const int64_t n = w % 2 ? 1 : 3, c = w % 3 ? 16 : 32;
      check_against_naive({n, c, w, w}, {c, 1, k, k}, geometry(1, k / 2, 1, c), w % 2 == 0);
    }
  // small planes, non-square and stride 2 (channels-last), 1x1 planes
  check_against_naive({2, 16, 4, 8}, {16, 1, 3, 3}, geometry(1, 1, 1, 16), true);
  check_against_naive({2, 32, 8, 8}, {32, 1, 5, 5}, geometry(2, 2, 1, 32), false);
  check_against_naive({2, 16, 4, 4}, {16, 1, 3, 3}, geometry(2, 1, 1, 16), true);
  check_against_naive({3, 16, 1, 1}, {16, 1, 3, 3}, geometry(1, 1, 1, 16), true);
  check_against_naive({2, 24, 4, 4}, {24, 1, 3, 3}, geometry(1, 1, 1, 24), false);  // 24 channels
  // stride 2 on 8x8 and 16x16 planes (polyphase components), on one and several threads
  for (int64_t k : {3, 5}) {
    check_against_naive({1, 16, 8, 8}, {16, 1, k, k}, geometry(2, k / 2, 1, 16), true);
    check_against_naive({24, 32, 8, 8}, {32, 1, k, k}, geometry(2, k / 2, 1, 32), false);
    check_against_naive({10, 32, 16, 16}, {32, 1, k, k}, geometry(2, k / 2, 1, 32), true);
    // 4x4 -> 2x2, four channels per vector (channel counts a multiple of 4)
    check_against_naive({3, 12, 4, 4}, {12, 1, k, k}, geometry(2, k / 2, 1, 12), k == 3);
    check_against_naive({64, 96, 4, 4}, {96, 1, k, k}, geometry(2, k / 2, 1, 96), k == 5);
  }
  // 8k channels (an AVX2 build's channels-last route takes any stride and dilation): stride
  // 3, dilation 2 with stride 2, a partial last channel block (56 = 48 + 8 on 16x16
  // planes), no padding down to a 1x1 output, 8 channels on several threads
  check_against_naive({2, 8, 11, 10}, {8, 1, 3, 3}, geometry(3, 1, 1, 8), true);
  check_against_naive({2, 24, 12, 12}, {24, 1, 3, 3}, geometry(2, 2, 2, 24), false);
  check_against_naive({3, 56, 16, 16}, {56, 1, 3, 3}, geometry(1, 1, 1, 56), true);
  check_against_naive({2, 8, 5, 5}, {8, 1, 5, 5}, geometry(1, 0, 1, 8), false);
  check_against_naive({9, 8, 32, 32}, {8, 1, 3, 3}, geometry(1, 1, 1, 8), true);
  // flat planes on several threads (the weight gradient splits the channels)
  check_against_naive({16, 48, 8, 8}, {48, 1, 3, 3}, geometry(1, 1, 1, 48), true);
  check_against_naive({40, 80, 4, 4}, {80, 1, 5, 5}, geometry(1, 2, 1, 80), false);
  check_against_naive({72, 160, 2, 2}, {160, 1, 5, 5}, geometry(1, 2, 1, 160), true);
}

TEST_CASE("conv2d gradient checks over input, weight and bias") {
  manual_seed(11);
  struct Case {
    const char* name;
    Shape xs, ws;
    Conv2dParams p;
    bool bias;
  };
  const Case cases[] = {
      {"3x3 pad 1", {2, 3, 5, 5}, {4, 3, 3, 3}, geometry(1, 1, 1, 1), true},
      {"stride 2", {2, 2, 7, 7}, {3, 2, 3, 3}, geometry(2, 1, 1, 1), true},
      {"dilation 2", {1, 2, 7, 6}, {2, 2, 3, 3}, geometry(1, 2, 2, 1), false},
      {"groups 2", {2, 4, 5, 5}, {6, 2, 3, 3}, geometry(1, 1, 1, 2), true},
      {"depthwise", {2, 3, 6, 5}, {3, 1, 3, 3}, geometry(1, 1, 1, 3), true},
      {"depthwise x2, stride 2, 5x5", {1, 2, 7, 7}, {4, 1, 5, 5}, geometry(2, 2, 1, 2), false},
      {"1x1", {2, 4, 3, 3}, {5, 4, 1, 1}, geometry(1, 0, 1, 1), true},
      {"odd sizes, non-square kernel", {2, 2, 5, 7}, {3, 2, 3, 2}, geometry(1, 0, 1, 1), true},
      {"batch 1", {1, 3, 4, 4}, {2, 3, 3, 3}, geometry(1, 1, 1, 1), false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Tensor x = random_leaf(c.xs), w = random_leaf(c.ws);
    Tensor b = c.bias ? random_leaf({c.ws[0]}) : Tensor();
    std::vector<Tensor> wrt{x, w};
    if (c.bias) wrt.push_back(b);
    CHECK_GRADCHECK([&] { return conv2d(x, w, b, c.p); }, wrt);
  }
}

TEST_CASE("conv2d rejects bad arguments with a clear error") {
  Tensor x = Tensor::zeros({1, 4, 5, 5}), w = Tensor::zeros({2, 4, 3, 3});
  CHECK_THROWS_WITH_AS(conv2d(Tensor::zeros({4, 5, 5}), w), doctest::Contains("[N, C, H, W]"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({2, 3, 3, 3})), doctest::Contains("input channels"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, w, Tensor(), 1, 0, 1, 3), doctest::Contains("groups"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, w, Tensor::zeros({3})), doctest::Contains("bias"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({2, 4, 7, 7})), doctest::Contains("smaller than"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({2, 4, 6, 6}), Tensor(), 5), doctest::Contains("smaller than"),
                       Error);
  CHECK_THROWS_WITH_AS(conv2d(x, w.to(DType::f64)), doctest::Contains("dtype"), Error);
}
