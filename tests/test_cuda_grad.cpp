// Float64 gradient checks of the differentiable ops running on the GPU. gradcheck (tests/
// gradcheck.h) perturbs its leaves in host memory, so the leaves stay on the CPU and each
// function moves them to the GPU first and its result back at the end: the op, its Node's
// backward and every kernel they call run on the device, and the gradient comes home
// through to()'s own backward. Skipped with a printed reason when no GPU is present.
#include "cuda_parity.h"
#include "gradcheck.h"

using namespace ag;
using namespace ag::testing;

TEST_CASE("cuda gradcheck: broadcasting arithmetic") {
  AG_SKIP_WITHOUT_GPU();
  Tensor a = random_leaf({2, 3, 4}), b = random_leaf({3, 1}), c = random_leaf({4}, 0.5, 2.0);
  CHECK_GRADCHECK([&] { return host(add(gpu(a), gpu(b))); }, {a, b});
  CHECK_GRADCHECK([&] { return host(sub(gpu(b), gpu(a))); }, {a, b});
  CHECK_GRADCHECK([&] { return host(mul(gpu(a), gpu(c))); }, {a, c});
  CHECK_GRADCHECK([&] { return host(div(gpu(a), gpu(c))); }, {a, c});
  CHECK_GRADCHECK([&] { return host(add(mul(gpu(a), 3.0), -1.5)); }, {a});
}

TEST_CASE("cuda gradcheck: unary math and activations") {
  AG_SKIP_WITHOUT_GPU();
  // Inputs kept off kinks (0 for relu/abs, 0 and 6 for relu6, +-3 for hardswish).
  Tensor x = random_leaf({3, 5}), pos = random_leaf({3, 5}, 0.2, 3.0), unit = random_leaf({3, 5}, -0.9, 0.9);
  Tensor wide = random_leaf({3, 5}, 0.3, 2.7);
  CHECK_GRADCHECK([&] { return host(neg(gpu(x))); }, {x});
  CHECK_GRADCHECK([&] { return host(exp(gpu(x))); }, {x});
  CHECK_GRADCHECK([&] { return host(log(gpu(pos))); }, {pos});
  CHECK_GRADCHECK([&] { return host(sqrt(gpu(pos))); }, {pos});
  CHECK_GRADCHECK([&] { return host(pow(gpu(pos), 2.5)); }, {pos});
  CHECK_GRADCHECK([&] { return host(abs(gpu(wide))); }, {wide});
  CHECK_GRADCHECK([&] { return host(clamp(gpu(x), -0.5, 0.5)); }, {x});
  CHECK_GRADCHECK([&] { return host(sin(gpu(x))); }, {x});
  CHECK_GRADCHECK([&] { return host(cos(gpu(x))); }, {x});
  CHECK_GRADCHECK([&] { return host(acos(gpu(unit))); }, {unit});
  CHECK_GRADCHECK([&] { return host(relu(gpu(wide))); }, {wide});
  CHECK_GRADCHECK([&] { return host(relu6(gpu(wide))); }, {wide});
  CHECK_GRADCHECK([&] { return host(silu(gpu(x))); }, {x});
  CHECK_GRADCHECK([&] { return host(sigmoid(gpu(x))); }, {x});
  CHECK_GRADCHECK([&] { return host(tanh(gpu(x))); }, {x});
  CHECK_GRADCHECK([&] { return host(hardswish(gpu(x))); }, {x});
}

TEST_CASE("cuda gradcheck: where, reductions and sum_to_shape") {
  AG_SKIP_WITHOUT_GPU();
  Tensor a = random_leaf({4, 5}), b = random_leaf({4, 5});
  Tensor cond = Tensor::from_vector({1, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 0}, {4, 5});
  CHECK_GRADCHECK([&] { return host(where(gpu(cond), gpu(a), gpu(b))); }, {a, b});
  Tensor x = random_leaf({3, 4, 5});
  CHECK_GRADCHECK([&] { return host(sum(gpu(x))); }, {x});
  CHECK_GRADCHECK([&] { return host(mean(gpu(x))); }, {x});
  CHECK_GRADCHECK([&] { return host(max(gpu(x))); }, {x});
  for (int64_t dim : {0, 1, 2}) {
    CHECK_GRADCHECK([&] { return host(sum(gpu(x), dim)); }, {x});
    CHECK_GRADCHECK([&] { return host(mean(gpu(x), dim, true)); }, {x});
    CHECK_GRADCHECK([&] { return host(max(gpu(x), dim)); }, {x});
  }
  CHECK_GRADCHECK([&] { return host(sum_to_shape(gpu(x), {4, 1})); }, {x});
}

TEST_CASE("cuda gradcheck: matmul, batched matmul with transposes, linear") {
  AG_SKIP_WITHOUT_GPU();
  Tensor a = random_leaf({4, 6}), b = random_leaf({6, 3}), bt = random_leaf({3, 6});
  CHECK_GRADCHECK([&] { return host(matmul(gpu(a), gpu(b))); }, {a, b});
  CHECK_GRADCHECK([&] { return host(matmul(gpu(a), gpu(bt).t())); }, {a, bt});
  Tensor ba = random_leaf({2, 4, 5}), bb = random_leaf({2, 5, 3});
  CHECK_GRADCHECK([&] { return host(matmul(gpu(ba), gpu(bb))); }, {ba, bb});
  Tensor x = random_leaf({5, 6}), w = random_leaf({3, 6}), bias = random_leaf({3});
  CHECK_GRADCHECK([&] { return host(linear(gpu(x), gpu(w), gpu(bias))); }, {x, w, bias});
  CHECK_GRADCHECK([&] { return host(linear(gpu(x), gpu(w))); }, {x, w});
}

TEST_CASE("cuda gradcheck: softmax, log_softmax, l2_normalize") {
  AG_SKIP_WITHOUT_GPU();
  Tensor x = random_leaf({3, 4, 5}, -3, 3);
  for (int64_t dim : {0, 1, 2}) {
    CHECK_GRADCHECK([&] { return host(softmax(gpu(x), dim)); }, {x});
    CHECK_GRADCHECK([&] { return host(log_softmax(gpu(x), dim)); }, {x});
    CHECK_GRADCHECK([&] { return host(l2_normalize(gpu(x), dim)); }, {x});
  }
}

TEST_CASE("cuda gradcheck: gather, one_hot, cat and views") {
  AG_SKIP_WITHOUT_GPU();
  Tensor x = random_leaf({3, 5});
  Tensor index = Tensor::from_labels({4, 0, 0, 2, 1, 3}).view({3, 2});
  CHECK_GRADCHECK([&] { return host(gather(gpu(x), 1, index.to(kGpu))); }, {x});
  Tensor labels = Tensor::from_labels({2, 0, 4});
  CHECK_GRADCHECK([&] { return host(mul(gpu(x), one_hot(labels.to(kGpu), 5, DType::f64))); }, {x});
  Tensor y = random_leaf({2, 5});
  CHECK_GRADCHECK([&] { return host(cat({gpu(x), gpu(y)}, 0)); }, {x, y});
  CHECK_GRADCHECK([&] { return host(gpu(x).t().contiguous()); }, {x});
  CHECK_GRADCHECK([&] { return host(mul(gpu(x).reshape({5, 3}), gpu(x).t())); }, {x});
  CHECK_GRADCHECK([&] { return host(gpu(x).to(DType::f32).to(DType::f64)); }, {x}, {1e-3, 1e-4, 1e-2});
}
