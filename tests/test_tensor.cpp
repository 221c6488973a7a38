// Tensor basics: factories, metadata, views, copies, dtype conversion, printing, errors.
#include <cmath>

#include "core/ops.h"
#include "core/random.h"
#include "gradcheck.h"

using namespace ag;

TEST_CASE("factories fill every element") {
  CHECK(Tensor::zeros({2, 3}).to_vector() == std::vector<double>(6, 0.0));
  CHECK(Tensor::ones({4}, DType::f64).to_vector() == std::vector<double>(4, 1.0));
  CHECK(Tensor::full({2}, 2.5).to_vector() == std::vector<double>{2.5, 2.5});
  CHECK(Tensor::arange(4, DType::i64).to_labels() == std::vector<int64_t>{0, 1, 2, 3});
  Tensor s = Tensor::scalar(3.0);
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.item() == 3.0);
}

TEST_CASE("metadata: shape, strides, sizes, dtype") {
  Tensor t = Tensor::zeros({2, 3, 4}, DType::f64);
  CHECK(t.shape() == Shape{2, 3, 4});
  CHECK(t.strides() == Shape{12, 4, 1});
  CHECK(t.size(-1) == 4);
  CHECK(t.numel() == 24);
  CHECK(t.dtype() == DType::f64);
  CHECK(t.device() == Device::cpu());
  CHECK(t.is_contiguous());
  CHECK(t.describe() == "float64[2,3,4] cpu");
  CHECK_THROWS_AS(t.size(3), Error);
}

TEST_CASE("seeded random init is reproducible and has the right moments") {
  manual_seed(42);
  Tensor a = Tensor::normal({10000}, 1.0, 2.0, DType::f64);
  manual_seed(42);
  Tensor b = Tensor::normal({10000}, 1.0, 2.0, DType::f64);
  CHECK(a.to_vector() == b.to_vector());
  double m = mean(a).item();
  double var = mean(pow(a - m, 2.0)).item();
  CHECK(m == doctest::Approx(1.0).epsilon(0.05));
  CHECK(std::sqrt(var) == doctest::Approx(2.0).epsilon(0.05));
  Tensor u = Tensor::uniform({10000}, -1, 3);
  for (double v : u.to_vector()) CHECK((v >= -1 && v < 3));
}

TEST_CASE("reshape, view and flatten share storage when contiguous") {
  Tensor t = Tensor::arange(6, DType::f64);
  Tensor r = t.reshape({2, -1});
  CHECK(r.shape() == Shape{2, 3});
  CHECK(r.storage() == t.storage());
  CHECK(t.reshape({3, 2}).flatten(0).shape() == Shape{6});
  CHECK_THROWS_WITH_AS(t.reshape({4, 2}), doctest::Contains("cannot reshape [6]"), Error);
  CHECK_THROWS_AS(t.reshape({-1, -1}), Error);
}

TEST_CASE("transpose and permute are strided views; contiguous() copies them") {
  Tensor t = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {2, 3}, DType::f64);
  Tensor tt = t.t();
  CHECK(tt.shape() == Shape{3, 2});
  CHECK_FALSE(tt.is_contiguous());
  CHECK(tt.to_vector() == std::vector<double>{0, 3, 1, 4, 2, 5});
  Tensor c = tt.contiguous();
  CHECK(c.is_contiguous());
  CHECK(c.storage() != t.storage());
  Tensor p = Tensor::arange(24, DType::f64).reshape({2, 3, 4}).permute({2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.contiguous().to_vector()[1] == 4.0);  // p[0,0,1] = x[0,1,0] = 4
  CHECK_THROWS_AS(p.permute({0, 0, 1}), Error);
  // A transposed view is reshaped through a copy.
  CHECK(tt.reshape({6}).to_vector() == std::vector<double>{0, 3, 1, 4, 2, 5});
  CHECK_THROWS_AS(tt.view({6}), Error);
}

TEST_CASE("slice along dim 0 and cat") {
  Tensor t = Tensor::arange(12, DType::f64).reshape({4, 3});
  Tensor s = t.slice(1, 3);
  CHECK(s.shape() == Shape{2, 3});
  CHECK(s.to_vector() == std::vector<double>{3, 4, 5, 6, 7, 8});
  CHECK_THROWS_AS(t.slice(2, 5), Error);
  Tensor a = Tensor::ones({2, 2}, DType::f64), b = Tensor::zeros({2, 1}, DType::f64);
  CHECK(cat({a, b}, 1).to_vector() == std::vector<double>{1, 1, 0, 1, 1, 0});
  CHECK(cat({a, b.reshape({1, 2})}, 0).shape() == Shape{3, 2});
  CHECK_THROWS_WITH_AS(cat({a, b}, 0), doctest::Contains("does not match"), Error);
}

TEST_CASE("unsqueeze and squeeze") {
  Tensor t = Tensor::zeros({3, 4});
  CHECK(t.unsqueeze(0).shape() == Shape{1, 3, 4});
  CHECK(t.unsqueeze(-1).shape() == Shape{3, 4, 1});
  CHECK(t.unsqueeze(1).squeeze(1).shape() == Shape{3, 4});
  CHECK_THROWS_AS(t.squeeze(0), Error);
}

TEST_CASE("copy_, fill_ and dtype conversion") {
  Tensor a = Tensor::from_vector({1.5, -2.25, 3}, {3}, DType::f64);
  Tensor f = a.to(DType::f32);
  CHECK(f.dtype() == DType::f32);
  CHECK(f.to_vector() == std::vector<double>{1.5, -2.25, 3});
  CHECK(a.to(DType::i64).to_labels() == std::vector<int64_t>{1, -2, 3});
  Tensor dst = Tensor::zeros({3}, DType::f64);
  dst.copy_(f);
  CHECK(dst.to_vector() == a.to_vector());
  // Copy into a strided destination (a transposed view).
  Tensor m = Tensor::zeros({2, 2}, DType::f64);
  Tensor mt = m.t();
  mt.copy_(Tensor::from_vector({1, 2, 3, 4}, {2, 2}, DType::f64));
  CHECK(m.to_vector() == std::vector<double>{1, 3, 2, 4});
  mt.fill_(7);
  CHECK(m.to_vector() == std::vector<double>(4, 7.0));
  CHECK_THROWS_AS(dst.copy_(Tensor::zeros({4})), Error);
}

TEST_CASE("printing is readable") {
  Tensor t = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  std::string s = t.str();
  CHECK(s.find("[[1, 2],") != std::string::npos);
  CHECK(s.find("float32[2,2] cpu") != std::string::npos);
  Tensor big = Tensor::arange(100);
  CHECK(big.str().find("...") != std::string::npos);
}

TEST_CASE("errors name the problem") {
  CHECK_THROWS_WITH_AS(Tensor::from_vector({1, 2}, {3}), doctest::Contains("2 values do not fill shape [3]"),
                       Error);
  Tensor i = Tensor::zeros({2}, DType::i64);
  CHECK_THROWS_WITH_AS(i.data<float>(), doctest::Contains("the tensor is int64"), Error);
#ifndef AG_WITH_CUDA
  CHECK_THROWS_WITH_AS(Tensor::zeros({2}, DType::f32, Device::cuda()),
                       doctest::Contains("built without CUDA"), Error);
#endif
  CHECK_THROWS_WITH_AS(Device::parse("gpu"), doctest::Contains("invalid device 'gpu'"), Error);
  CHECK(Device::parse("cuda:1").index == 1);
}

TEST_CASE("the error message carries file:line") {
  try {
    Tensor::zeros({2}).size(5);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).rfind("core/tensor.cpp:", 0) == 0);
  }
}
