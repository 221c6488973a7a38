// CPU-vs-CUDA parity of the elementwise and copy kernels (core/cuda/elementwise.cu,
// core/cuda/copy.cu): every unary math op forward and backward (the activations are in
// test_cuda_activation.cpp), binary ops under several
// broadcast patterns, axpby/scale/where, fill and dtype-converting strided copies, and
// host <-> device transfers. Skipped with a printed reason when no GPU is present.
#include "cuda_parity.h"

using namespace ag;
using namespace ag::testing;

namespace {

struct UnaryCase {
  UnaryOp op;
  const char* name;
  double low, high;  // input range where the op and its derivative are finite
  UnaryParams params;
};

const std::vector<UnaryCase>& unary_cases() {
  static const std::vector<UnaryCase> cases = {
      {UnaryOp::neg, "neg", -3, 3, {}},        {UnaryOp::exp, "exp", -3, 3, {}},
      {UnaryOp::log, "log", 0.1, 5, {}},       {UnaryOp::sqrt, "sqrt", 0.1, 5, {}},
      {UnaryOp::abs, "abs", -3, 3, {}},        {UnaryOp::sin, "sin", -4, 4, {}},
      {UnaryOp::cos, "cos", -4, 4, {}},        {UnaryOp::acos, "acos", -0.95, 0.95, {}},
      {UnaryOp::pow, "pow", 0.2, 3, {2.5, 0}}, {UnaryOp::clamp, "clamp", -3, 3, {-0.5, 1.25}},
  };
  return cases;
}

}  // namespace

TEST_CASE("cuda parity: unary ops forward and backward") {
  AG_SKIP_WITHOUT_GPU();
  for (DType dt : float_dtypes())
    for (const UnaryCase& c : unary_cases()) {
      const Shape shape = {37, 129};  // not a multiple of the block size
      Tensor x = rand_cpu(shape, dt, c.low, c.high), g = rand_cpu(shape, dt);
      const std::string what = std::string(c.name) + " " + dtype_name(dt);
      check_parity(
          what + " forward",
          [&](Device d) -> std::vector<Tensor> {
            Tensor out = poisoned(shape, dt, d);
            unary_forward(out, x.to(d), c.op, c.params);
            return {out};
          },
          tol_for(dt));
      check_parity(
          what + " backward",
          [&](Device d) -> std::vector<Tensor> {
            Tensor xd = x.to(d), y = poisoned(shape, dt, d), gx = poisoned(shape, dt, d);
            unary_forward(y, xd, c.op, c.params);
            unary_backward(gx, g.to(d), xd, y, c.op, c.params);
            return {gx};
          },
          tol_for(dt));
    }
}

TEST_CASE("cuda parity: binary ops with broadcasting") {
  AG_SKIP_WITHOUT_GPU();
  struct Pattern {
    Shape a, b;
  };
  const std::vector<Pattern> patterns = {
      {{5, 7, 33}, {5, 7, 33}},                  // same shape (the fast path)
      {{4, 6, 5, 3}, {1, 6, 1, 1}},              // per-channel bias
      {{3, 1, 7}, {1, 5, 1}},                    // both sides broadcast
      {{9, 17}, {17}},                           // row vector, fewer dims
      {{2, 3, 4, 5, 6}, {1}},                    // scalar-like
      {{1}, {2, 3, 4}},                          // scalar-like on the left
      {{2, 1, 3, 1, 2, 1}, {1, 4, 3, 5, 1, 2}},  // many dims, little merging
  };
  const BinaryOp ops[] = {BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::div};
  const char* names[] = {"add", "sub", "mul", "div"};
  for (DType dt : float_dtypes())
    for (const Pattern& p : patterns)
      for (int k = 0; k < 4; ++k) {
        Tensor a = rand_cpu(p.a, dt), b = rand_cpu(p.b, dt, 0.5, 2.0);  // b away from 0 for div
        const Shape out_shape = broadcast_shapes(p.a, p.b, "test");
        check_parity(
            std::string(names[k]) + " " + shape_str(p.a) + " " + shape_str(p.b) + " " + dtype_name(dt),
            [&](Device d) -> std::vector<Tensor> {
              Tensor out = poisoned(out_shape, dt, d);
              binary_forward(out, a.to(d), b.to(d), ops[k]);
              return {out};
            },
            tol_for(dt));
      }
}

TEST_CASE("cuda parity: axpby, scale and where") {
  AG_SKIP_WITHOUT_GPU();
  for (DType dt : float_dtypes()) {
    const Shape shape = {1000, 33};
    Tensor a = rand_cpu(shape, dt), b = rand_cpu(shape, dt);
    check_parity(
        "axpby",
        [&](Device d) -> std::vector<Tensor> {
          Tensor out = poisoned(shape, dt, d);
          axpby(out, 0.75, a.to(d), -1.5, b.to(d));
          return {out};
        },
        tol_for(dt));
    check_parity(
        "scale",
        [&](Device d) -> std::vector<Tensor> {
          Tensor out = poisoned(shape, dt, d);
          scale(out, a.to(d), -3.25);
          return {out};
        },
        tol_for(dt));
    for (DType cond_dt : {DType::f32, DType::f64, DType::i64}) {
      // A condition with both true (nonzero, of either sign) and false entries.
      std::vector<double> flags = rand_cpu(shape, DType::f64, -1.5, 1.5).to_vector();
      for (double& f : flags) f = std::abs(f) < 0.5 ? 0.0 : std::trunc(f * 2);
      Tensor c = Tensor::from_vector(flags, shape, cond_dt);
      check_parity(
          std::string("where cond ") + dtype_name(cond_dt),
          [&](Device d) -> std::vector<Tensor> {
            Tensor out = poisoned(shape, dt, d);
            where_forward(out, c.to(d), a.to(d), b.to(d));
            return {out};
          },
          tol_for(dt));
    }
  }
}

TEST_CASE("cuda parity: fill and strided, dtype-converting copies") {
  AG_SKIP_WITHOUT_GPU();
  for (DType dt : {DType::f32, DType::f64, DType::i64}) {
    check_parity(
        std::string("fill contiguous ") + dtype_name(dt),
        [&](Device d) -> std::vector<Tensor> {
          Tensor out = poisoned({3, 257}, dt, d);
          fill(out, -4.0);
          return {out};
        },
        tol_for(DType::f64));
    const Tensor start = rand_cpu({6, 10, 7}, DType::f64, -50, 50).to(dt);
    check_parity(
        std::string("fill strided ") + dtype_name(dt),
        [&](Device d) -> std::vector<Tensor> {
          Tensor base = start.to(d).clone();
          Tensor view = base.transpose(0, 2).slice(1, 5);  // [4, 10, 6], strided
          fill(view, 2.5);
          return {base};  // the untouched part must keep its values on both devices
        },
        tol_for(DType::f64));
  }
  Tensor src = rand_cpu({5, 8, 9}, DType::f64, -50, 50);
  for (DType to_dt : {DType::f32, DType::f64, DType::i64})
    for (DType from_dt : {DType::f32, DType::f64}) {
      Tensor s = src.to(from_dt);
      check_parity(
          std::string("copy transposed ") + dtype_name(from_dt) + " -> " + dtype_name(to_dt),
          [&](Device d) -> std::vector<Tensor> {
            Tensor out = poisoned({9, 8, 5}, to_dt, d);
            copy(out, s.to(d).permute({2, 1, 0}));
            return {out};
          },
          tol_for(DType::f32));
      check_parity(
          std::string("copy into a strided view ") + dtype_name(from_dt) + " -> " + dtype_name(to_dt),
          [&](Device d) -> std::vector<Tensor> {
            Tensor base = poisoned({8, 5, 9}, to_dt, d);
            Tensor view = base.transpose(0, 1);  // [5, 8, 9]
            copy(view, s.to(d));
            return {base};
          },
          tol_for(DType::f32));
    }
}

TEST_CASE("cuda: host <-> device transfers are exact") {
  AG_SKIP_WITHOUT_GPU();
  for (DType dt : {DType::f32, DType::f64, DType::i64}) {
    Tensor host = rand_cpu({123, 45}, DType::f64, -1e6, 1e6).to(dt);
    Tensor dev = host.to(kGpu);
    CHECK(dev.device() == kGpu);
    Tensor back = dev.to(Device::cpu());
    CHECK(back.to_vector() == host.to_vector());
    // Device -> device copy and a non-contiguous host source.
    Tensor twin = Tensor::empty({123, 45}, dt, kGpu);
    twin.copy_(dev);
    CHECK(twin.to_vector() == host.to_vector());
    Tensor transposed = Tensor::empty({45, 123}, dt, kGpu);
    transposed.copy_(host.t());
    CHECK(transposed.to_vector() == host.t().contiguous().to_vector());
  }
}
