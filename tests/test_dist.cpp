// The single-process parts of data-parallel training: the world of one process, the
// post-accumulate-grad hook of autograd, and the gradient reducer's bucket layout,
// unused parameters and accumulation rules over a world of one. The multi-rank behaviour
// is in test_dist_mpi.cpp (under mpirun).
#include <doctest/doctest.h>

#include <vector>

#include "core/dist/comm.h"
#include "core/dist/reducer.h"
#include "core/dist/sync_batch_norm.h"
#include "core/ops.h"
#include "core/random.h"
#include "gradcheck.h"
#include "layers/batch_norm.h"
#include "layers/linear.h"

using namespace ag;
using ag::testing::random_leaf;

TEST_CASE("without a launcher the world is one process whose collectives keep the data") {
  dist::init(nullptr, nullptr);  // not under mpirun: nothing starts
  dist::Communicator& w = dist::world();
  CHECK(w.rank() == 0);
  CHECK(w.size() == 1);
  CHECK(w.backend() == "single");
  CHECK_FALSE(dist::is_distributed());
  CHECK(&dist::world_for(Device::cpu()) == &w);
  Tensor t = Tensor::from_vector({1, 2, 3}, {3}, DType::f64);
  w.allreduce_sum(t);
  CHECK(t.to_vector() == std::vector<double>{1, 2, 3});
  auto pending = w.allreduce_sum_async(t);
  CHECK(pending->test());
  pending->wait();
  CHECK(t.to_vector() == std::vector<double>{1, 2, 3});
  double host[2] = {4, 5};
  w.allreduce_sum(host, 2);
  CHECK(host[1] == 5);
  w.broadcast(t, 0);
  w.barrier();
  CHECK(t.to_vector() == std::vector<double>{1, 2, 3});
}

TEST_CASE("collectives reject what no backend can reduce, naming it") {
  dist::Communicator& w = dist::world();
  Tensor labels = Tensor::from_labels({1, 2});
  CHECK_THROWS_WITH_AS(w.allreduce_sum(labels), doctest::Contains("float32 or float64"), Error);
  Tensor view = Tensor::zeros({3, 2}).t();
  CHECK_THROWS_WITH_AS(w.allreduce_sum(view), doctest::Contains("contiguous"), Error);
  Tensor undefined;
  CHECK_THROWS_WITH_AS(w.allreduce_sum_async(undefined), doctest::Contains("undefined"), Error);
  Tensor t = Tensor::zeros({2});
  CHECK_THROWS_WITH_AS(w.broadcast(t, 1), doctest::Contains("root 1"), Error);
}

TEST_CASE("post-accumulate-grad hook: once per backward, after the leaf's gradient is complete") {
  manual_seed(3);
  Tensor w = random_leaf({3}), x = random_leaf({3});
  // w is used three times (three AccumulateGrad sinks); the hook must see the full sum.
  auto loss_of = [&] { return add(sum(mul(w, x)), add(sum(mul(w, w)), sum(exp(w)))); };
  std::vector<std::vector<double>> seen;
  int x_calls = 0;
  w.set_post_accumulate_grad_hook([&] { seen.push_back(w.grad().to_vector()); });
  x.set_post_accumulate_grad_hook([&] { ++x_calls; });
  loss_of().backward();
  REQUIRE(seen.size() == 1);
  CHECK(x_calls == 1);
  const std::vector<double> wv = w.to_vector(), xv = x.to_vector();
  for (int i = 0; i < 3; ++i)
    CHECK(seen[0][i] == doctest::Approx(xv[i] + 2 * wv[i] + std::exp(wv[i])).epsilon(1e-12));
  CHECK(w.grad().to_vector() == seen[0]);  // nothing was added after the hook
  // A second backward fires again, with the accumulated gradient.
  loss_of().backward();
  REQUIRE(seen.size() == 2);
  CHECK(x_calls == 2);
  for (int i = 0; i < 3; ++i) CHECK(seen[1][i] == doctest::Approx(2 * seen[0][i]).epsilon(1e-12));
  // A backward that does not reach the leaf leaves it alone; an empty function removes it.
  sum(mul(x, x)).backward();
  CHECK(seen.size() == 2);
  CHECK(x_calls == 3);
  w.set_post_accumulate_grad_hook(nullptr);
  loss_of().backward();
  CHECK(seen.size() == 2);
  x.set_post_accumulate_grad_hook(nullptr);
}

TEST_CASE("post-accumulate-grad hook: fires when a leaf's uses sit at different depths") {
  manual_seed(4);
  Tensor w = random_leaf({2, 2}), x = random_leaf({1, 2});
  // w near the output and deep inside: the deep use's sink comes last in the order.
  Tensor h = matmul(tanh(matmul(x, w)), w);
  std::vector<double> at_hook;
  w.set_post_accumulate_grad_hook([&] { at_hook = w.grad().to_vector(); });
  sum(h).backward();
  CHECK(at_hook == w.grad().to_vector());
  w.set_post_accumulate_grad_hook(nullptr);
}

TEST_CASE("post-accumulate-grad hook: only leaves that require grad, one at a time") {
  Tensor w = Tensor::ones({2}).set_requires_grad(true);
  w.set_post_accumulate_grad_hook([] {});
  CHECK_THROWS_WITH_AS(w.set_post_accumulate_grad_hook([] {}), doctest::Contains("already has a hook"),
                       Error);
  w.set_post_accumulate_grad_hook(nullptr);
  Tensor plain = Tensor::ones({2});
  CHECK_THROWS_WITH_AS(plain.set_post_accumulate_grad_hook([] {}),
                       doctest::Contains("leaf that requires grad"), Error);
  Tensor y = mul(w, 2.0);
  CHECK_THROWS_WITH_AS(y.set_post_accumulate_grad_hook([] {}), doctest::Contains("leaf that requires grad"),
                       Error);
}

namespace {
// Four parameters of 8, 40, 2 and 6 float64 values (64, 320, 16 and 48 bytes).
std::vector<Tensor> four_parameters() {
  manual_seed(11);
  return {random_leaf({8}), random_leaf({5, 8}), random_leaf({2}), random_leaf({6})};
}
Tensor loss_of(const std::vector<Tensor>& p, bool use_last) {
  Tensor l = add(sum(mul(p[0], p[0])), add(sum(exp(p[1])), sum(mul(p[2], 3.0))));
  return use_last ? add(l, sum(tanh(p[3]))) : l;
}
}  // namespace

TEST_CASE("reducer buckets: reverse registration order, closed at the size, a large tensor alone") {
  std::vector<Tensor> p = four_parameters();
  dist::GradientReducer reducer(dist::world(), p, {.bucket_bytes = 64});
  // reverse order: p3 (48 B), then p2 (16 B) fills the bucket to 64 B; p1 (320 B) alone; p0 alone
  CHECK(reducer.bucket_count() == 3);
  CHECK(reducer.bucket_of(3) == 0);
  CHECK(reducer.bucket_of(2) == 0);
  CHECK(reducer.bucket_of(1) == 1);
  CHECK(reducer.bucket_of(0) == 2);
  CHECK(reducer.bucket_gradient_bytes(0) == 64);
  CHECK(reducer.bucket_gradient_bytes(1) == 320);
  dist::GradientReducer one_bucket(dist::world(), four_parameters(), {});
  CHECK(one_bucket.bucket_count() == 1);
}

TEST_CASE("reducer: the first bucket closes at first_bucket_bytes, the others at bucket_bytes") {
  // reverse order p3 (48 B), p2 (16 B), p1 (320 B), p0 (64 B): a 48-byte first bucket takes p3
  // alone, then p2 and p1 share a 400-byte bucket, and p0 fits into it too
  dist::GradientReducer reducer(dist::world(), four_parameters(),
                                {.bucket_bytes = 400, .first_bucket_bytes = 48});
  CHECK(reducer.bucket_count() == 2);
  CHECK(reducer.bucket_gradient_bytes(0) == 48);
  CHECK(reducer.bucket_of(2) == 1);
  CHECK(reducer.bucket_of(0) == 1);
  // a first bucket larger than bucket_bytes is capped at it
  dist::GradientReducer capped(dist::world(), four_parameters(),
                               {.bucket_bytes = 64, .first_bucket_bytes = 1000});
  CHECK(capped.bucket_gradient_bytes(0) == 64);
}

TEST_CASE("reducer over one process: gradients kept, buckets started during backward, stats") {
  std::vector<Tensor> p = four_parameters();
  loss_of(p, true).backward();
  std::vector<std::vector<double>> expected;
  for (Tensor& t : p) {
    expected.push_back(t.grad().to_vector());
    t.zero_grad();
  }
  dist::GradientReducer reducer(dist::world(), p, {.bucket_bytes = 64});
  for (int step = 0; step < 2; ++step) {
    for (Tensor& t : p) t.zero_grad();
    loss_of(p, true).backward();
    reducer.finish();
    for (size_t i = 0; i < p.size(); ++i) CHECK(p[i].grad().to_vector() == expected[i]);
    CHECK(reducer.stats().buckets_started_in_backward == 3);
    CHECK(reducer.stats().bytes_last_step == (56 + 4) * 8);  // 56 gradient values + 4 used flags
  }
  CHECK(reducer.stats().steps == 2);
  CHECK(reducer.stats().total_bytes == 2 * 60 * 8);
}

TEST_CASE("reducer: an unused parameter keeps no gradient; its bucket starts in finish()") {
  std::vector<Tensor> p = four_parameters();
  dist::GradientReducer reducer(dist::world(), p, {.bucket_bytes = 64});
  loss_of(p, false).backward();  // p3 unused: bucket 0 (p3, p2) never completes in backward
  CHECK_FALSE(p[3].grad().defined());
  reducer.finish();
  CHECK(reducer.stats().buckets_started_in_backward == 0);  // bucket 0 first, in order
  CHECK_FALSE(p[3].grad().defined());
  CHECK(p[2].grad().to_vector() == std::vector<double>{3, 3});
}

TEST_CASE("reducer: a second backward before finish() is an error unless sync is off") {
  std::vector<Tensor> p = four_parameters();
  dist::GradientReducer reducer(dist::world(), p, {.bucket_bytes = 64});
  reducer.set_sync_enabled(false);
  loss_of(p, true).backward();  // accumulation step: no communication
  CHECK_THROWS_WITH_AS(reducer.finish(), doctest::Contains("synchronisation is off"), Error);
  reducer.set_sync_enabled(true);
  loss_of(p, true).backward();
  reducer.finish();
  CHECK(p[2].grad().to_vector() == std::vector<double>{6, 6});  // two passes accumulated
  loss_of(p, true).backward();
  CHECK_THROWS_WITH_AS(loss_of(p, true).backward(), doctest::Contains("twice before finish()"), Error);
}

TEST_CASE("reducer: parameters must be leaves that require grad, each listed once") {
  Tensor a = Tensor::ones({2}).set_requires_grad(true);
  CHECK_THROWS_WITH_AS(dist::GradientReducer(dist::world(), {a, a}), doctest::Contains("#1 is #0 again"),
                       Error);
  {
    dist::GradientReducer first(dist::world(), {a});
    CHECK_THROWS_WITH_AS(dist::GradientReducer(dist::world(), {Tensor::ones({1}).set_requires_grad(true), a}),
                         doctest::Contains("already has a hook"), Error);
  }
  a.set_post_accumulate_grad_hook([] {});  // the failed reducer left none behind, the first removed its own
  a.set_post_accumulate_grad_hook(nullptr);
  CHECK_THROWS_WITH_AS(dist::GradientReducer(dist::world(), {Tensor::ones({2})}),
                       doctest::Contains("leaf tensor that requires grad"), Error);
  CHECK_THROWS_WITH_AS(dist::GradientReducer(dist::world(), {a}, {.bucket_bytes = 0}),
                       doctest::Contains("bucket_bytes"), Error);
}

// ---- sync batch norm over one process is batch norm

TEST_CASE("sync_batch_norm over one process equals batch_norm: values, running stats, gradients") {
  for (Activation act : {Activation::none, Activation::relu}) {
    for (Shape shape : {Shape{5, 3}, Shape{3, 2, 4}, Shape{2, 3, 3, 2}}) {
      CAPTURE(shape_str(shape));
      manual_seed(21);
      Tensor x = random_leaf(shape, -2, 3), w = random_leaf({shape[1]}, 0.5, 1.5),
             b = random_leaf({shape[1]});
      Tensor up = Tensor::uniform(shape, -1, 1, DType::f64);
      Tensor rm1 = Tensor::zeros({shape[1]}, DType::f64), rv1 = Tensor::ones({shape[1]}, DType::f64);
      Tensor rm2 = rm1.clone(), rv2 = rv1.clone();
      Tensor y1 = batch_norm(x, w, b, rm1, rv1, true, 0.1, 1e-5, act);
      sum(mul(y1, up)).backward();
      const std::vector<double> gx = x.grad().to_vector(), gw = w.grad().to_vector(),
                                gb = b.grad().to_vector();
      for (Tensor* t : {&x, &w, &b}) t->zero_grad();
      Tensor y2 = dist::sync_batch_norm(x, w, b, rm2, rv2, true, 0.1, 1e-5, act, dist::world());
      sum(mul(y2, up)).backward();
      auto close = [](const std::vector<double>& a, const std::vector<double>& b) {
        REQUIRE(a.size() == b.size());
        for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(b[i]).epsilon(1e-12).scale(1.0));
      };
      close(y2.to_vector(), y1.to_vector());
      close(rm2.to_vector(), rm1.to_vector());
      close(rv2.to_vector(), rv1.to_vector());
      close(x.grad().to_vector(), gx);
      close(w.grad().to_vector(), gw);
      close(b.grad().to_vector(), gb);
    }
  }
}

TEST_CASE("sync_batch_norm in float32: channels with a mean far above their spread keep their gradient") {
  // As after a 1x1 convolution of ReLU outputs (a ResNet projection shortcut): every value
  // of a channel near 40, spread 0.05, where float32 cancellation would show first. The
  // float64 tests above cannot see it; here the two float32 paths must still agree closely
  // (measured: 8e-4 of a largest gradient of 48).
  manual_seed(23);
  const Shape shape{16, 4, 3, 3};
  Tensor noise = Tensor::uniform(shape, -0.05, 0.05, DType::f32);
  Tensor x1 = add(noise, 40.0).detach().set_requires_grad(true),
         x2 = x1.detach().clone().set_requires_grad(true);
  Tensor w = Tensor::uniform({4}, 0.5, 1.5, DType::f32), b = Tensor::uniform({4}, -1, 1, DType::f32);
  Tensor up = Tensor::uniform(shape, -1, 1, DType::f32);
  sum(mul(batch_norm(x1, w, b, Tensor(), Tensor(), true, 0.1, 1e-5, Activation::none), up)).backward();
  sum(mul(dist::sync_batch_norm(x2, w, b, Tensor(), Tensor(), true, 0.1, 1e-5, Activation::none,
                                dist::world()),
          up))
      .backward();
  const std::vector<double> want = x1.grad().to_vector(), got = x2.grad().to_vector();
  double scale = 0, worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::abs(want[i]));
    worst = std::max(worst, std::abs(got[i] - want[i]));
  }
  MESSAGE("largest input-gradient difference " << worst << " of " << scale);
  CHECK(worst < 1e-4 * scale);
}

TEST_CASE("sync_batch_norm gradcheck (float64), affine or not, fused ReLU") {
  manual_seed(22);
  Tensor x = random_leaf({4, 3, 2, 2}, -2, 2), w = random_leaf({3}, 0.5, 1.5), b = random_leaf({3});
  CHECK_GRADCHECK(
      [&] {
        return dist::sync_batch_norm(x, w, b, Tensor(), Tensor(), true, 0.1, 1e-5, Activation::none,
                                     dist::world());
      },
      {x, w, b});
  CHECK_GRADCHECK(
      [&] {
        return dist::sync_batch_norm(x, w, b, Tensor(), Tensor(), true, 0.1, 1e-5, Activation::relu,
                                     dist::world());
      },
      {x, w, b});
  Tensor x2 = random_leaf({6, 2});
  CHECK_GRADCHECK(
      [&] {
        return dist::sync_batch_norm(x2, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5,
                                     Activation::none, dist::world());
      },
      {x2});
}

TEST_CASE("sync_batch_norm: eval is batch_norm; bad arguments are named") {
  manual_seed(23);
  Tensor x = Tensor::uniform({4, 2}, -1, 1, DType::f64);
  Tensor rm = Tensor::from_vector({0.5, -1}, {2}, DType::f64),
         rv = Tensor::from_vector({2, 0.5}, {2}, DType::f64);
  Tensor want = batch_norm(x, Tensor(), Tensor(), rm, rv, false, 0.1, 1e-5);
  Tensor got =
      dist::sync_batch_norm(x, Tensor(), Tensor(), rm, rv, false, 0.1, 1e-5, Activation::none, dist::world());
  CHECK(got.to_vector() == want.to_vector());
  CHECK_THROWS_WITH_AS(dist::sync_batch_norm(x, Tensor::ones({3}, DType::f64), Tensor(), Tensor(), Tensor(),
                                             true, 0.1, 1e-5, Activation::none, dist::world()),
                       doctest::Contains("weight (gamma) must be a contiguous [2]"), Error);
  Tensor one = Tensor::ones({1, 2}, DType::f64);
  CHECK_THROWS_WITH_AS(dist::sync_batch_norm(one, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5,
                                             Activation::none, dist::world()),
                       doctest::Contains("more than one value per channel"), Error);
}

TEST_CASE("use_sync_batch_norm switches every BatchNorm of a tree; one process normalises as before") {
  manual_seed(24);
  auto inner = std::make_shared<Sequential>(std::vector<ModulePtr>{std::make_shared<BatchNorm1d>(3)});
  Sequential net({std::make_shared<Linear>(4, 3), std::make_shared<BatchNorm1d>(3), inner});
  Tensor x = Tensor::uniform({5, 4}, -1, 1);
  Tensor before = net(x);
  CHECK(use_sync_batch_norm(net) == 2);
  auto* bn = dynamic_cast<BatchNorm*>(&net[1]);
  REQUIRE(bn != nullptr);
  CHECK(bn->sync_stats());
  CHECK(bn->describe().find("sync") != std::string::npos);
  CHECK(net(x).to_vector() == before.to_vector());
  CHECK(use_sync_batch_norm(net, false) == 2);
  CHECK_FALSE(bn->sync_stats());
}
