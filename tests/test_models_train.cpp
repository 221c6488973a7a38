// Models in training: drop path (values, statistics, gradient), float64 gradient checks of
// a narrow, shallow instance of every family end to end (BN in training mode, every
// parameter and the input), one SGD step lowering the loss on a fixed batch, and what
// train() / eval() change (batch-norm statistics, dropout, drop path).
#include <doctest/doctest.h>

#include <cmath>

#include "core/random.h"
#include "gradcheck.h"
#include "layers/layers.h"
#include "models/drop_path.h"
#include "models/efficientnet.h"
#include "models/factory.h"
#include "models/mobilenet_v2.h"
#include "models/resnet.h"

using namespace ag;
using ag::testing::random_leaf;

namespace {

// Mean cross-entropy from the core ops. logits [N, C], labels int64 [N] -> [].
Tensor cross_entropy(const Tensor& logits, const Tensor& labels) {
  Tensor picked = sum(mul(one_hot(labels, logits.size(1), logits.dtype()), log_softmax(logits, 1)), 1);
  return neg(mean(picked));
}

// Every parameter of m (float64 leaves after m.to(f64)), then x.
std::vector<Tensor> params_and(Module& m, const Tensor& x) {
  std::vector<Tensor> wrt = m.parameters();
  wrt.push_back(x);
  return wrt;
}

// The smallest instances that still hold every layer type and block variant of a family.
ModelPtr tiny_resnet_basic() {
  ResNetConfig c;
  c.stem_channels = 3;
  c.stages = {{3, 1, 1}, {4, 1, 2}};  // an identity-shortcut block, then a projecting one
  auto m = std::make_shared<ResNet>(c);
  m->set_head(std::make_shared<Linear>(m->feature_dim(), 3));
  return m;
}

ModelPtr tiny_resnet_bottleneck() {
  ResNetConfig c;
  c.block = ResNetBlock::bottleneck;
  c.stem_channels = 4;
  c.stages = {{1, 1, 1}, {2, 1, 2}};  // 4 -> 1 -> 4 (identity), then 4 -> 2 -> 8, stride 2
  auto m = std::make_shared<ResNet>(c);
  m->set_head(std::make_shared<Linear>(m->feature_dim(), 3));
  return m;
}

ModelPtr tiny_mobilenet_v2() {
  MobileNetV2Config c;
  c.stem_channels = 4;
  // t = 1 (no expand conv), then a stride-2 expanding block and a residual one.
  c.stages = {{1, 3, 1, 1}, {2, 4, 2, 2}};
  c.last_channels = 6;
  auto m = std::make_shared<MobileNetV2>(c);
  m->set_head(std::make_shared<Linear>(m->feature_dim(), 3));
  return m;
}

std::shared_ptr<EfficientNet> tiny_efficientnet(double drop_path, double dropout) {
  EfficientNetConfig c;
  c.stem_channels = 4;
  // A residual t = 1 block with SE, a residual 5x5 block (drop path p = drop_path / 3),
  // and a stride-2 block.
  c.stages = {{1, 4, 1, 1, 3}, {2, 4, 1, 1, 5}, {2, 6, 1, 2, 3}};
  c.last_channels = 8;
  c.drop_path = drop_path;
  c.dropout = dropout;
  auto m = std::make_shared<EfficientNet>(c);
  m->set_head(std::make_shared<Linear>(m->feature_dim(), 3));
  return m;
}

// One plain SGD step (p -= lr * grad) on a fixed batch; returns the loss before and after.
// The generator is reseeded before each forward so dropout / drop path masks are equal.
std::pair<double, double> sgd_step(Model& m, double lr) {
  manual_seed(3);
  Tensor x = Tensor::uniform({8, 3, 16, 16}, -1, 1);
  Tensor y = Tensor::from_labels({0, 1, 2, 3, 4, 5, 6, 7});
  m.train();
  m.zero_grad();
  manual_seed(4);
  Tensor loss = cross_entropy(m.forward(x), y);
  const double before = loss.item();
  loss.backward();
  {
    NoGradGuard no_grad;
    for (auto& [name, p] : m.named_parameters()) {
      REQUIRE_MESSAGE(p.grad().defined(), name << " received no gradient");
      p.copy_(sub(p, mul(p.grad(), lr)));
    }
  }
  manual_seed(4);
  NoGradGuard no_grad;
  return {before, cross_entropy(m.forward(x), y).item()};
}

}  // namespace

TEST_CASE("drop_path: per-sample keep mask scaled by 1 / keep in training, identity in eval") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {4, 2});
  CHECK(drop_path(x, 0.5, /*training=*/false).same(x));
  CHECK(drop_path(x, 0.0, /*training=*/true).same(x));

  // Hand-worked from the generator's stream: sample i is dropped when its uniform draw
  // u_i < p, else scaled by 1 / (1 - p) = 2.
  manual_seed(21);
  Tensor y = drop_path(x, 0.5, true);
  Generator g(21);
  std::vector<double> expected;
  int dropped = 0;
  for (int i = 0; i < 4; ++i) {
    const bool drop = g.uniform() < 0.5;
    dropped += drop;
    for (int j = 0; j < 2; ++j) expected.push_back(drop ? 0.0 : 2.0 * (2 * i + j + 1));
  }
  CHECK(y.to_vector() == expected);
  CHECK(y.shape() == x.shape());
  CHECK(drop_path_mask({4, 2, 3, 3}, 0.5, DType::f32, Device::cpu()).shape() == Shape{4, 1, 1, 1});

  // Statistics: the keep rate is 1 - p and the mean is preserved.
  manual_seed(5);
  Tensor many = drop_path(Tensor::ones({4000, 3}), 0.25, true);
  std::vector<double> v = many.to_vector();
  int64_t kept = 0;
  double total = 0;
  for (size_t i = 0; i < v.size(); i += 3) {
    CHECK((v[i] == 0.0 || std::abs(v[i] - 4.0 / 3.0) < 1e-6));
    CHECK(v[i] == v[i + 1]);  // the whole sample shares one draw
    CHECK(v[i] == v[i + 2]);
    kept += v[i] != 0.0;
    total += v[i];
  }
  CHECK(static_cast<double>(kept) / 4000 == doctest::Approx(0.75).epsilon(0.04));
  CHECK(total / 4000 == doctest::Approx(1.0).epsilon(0.05));

  CHECK_THROWS_WITH_AS(drop_path(x, 1.0, true), doctest::Contains("[0, 1)"), Error);
  CHECK_THROWS_WITH_AS(drop_path(x, -0.1, false), doctest::Contains("[0, 1)"), Error);
  CHECK_THROWS_WITH_AS(DropPath(1.5), doctest::Contains("[0, 1)"), Error);
  CHECK_THROWS_WITH_AS(drop_path(Tensor::from_labels({1, 2}), 0.5, true), doctest::Contains("float"), Error);
  CHECK_THROWS_WITH_AS(drop_path(Tensor::scalar(1.0), 0.5, true), doctest::Contains("batch dim"), Error);
}

TEST_CASE("DropPath module: train/eval and a gradient check under a fixed mask") {
  DropPath layer(0.5);
  Tensor x = random_leaf({4, 2, 2, 2});
  // Seed 1's first four draws drop some samples and keep others (checked, so the gradient
  // check covers both kinds).
  manual_seed(1);
  std::vector<double> mask = drop_path_mask({4, 1, 1, 1}, 0.5, DType::f64, Device::cpu()).to_vector();
  int zeros = 0;
  for (double m : mask) zeros += m == 0.0;
  REQUIRE(zeros > 0);
  REQUIRE(zeros < 4);
  CHECK_GRADCHECK(
      [&] {
        manual_seed(1);
        return layer.forward(x);
      },
      {x});
  layer.eval();
  Tensor out = layer.forward(x);
  CHECK(out.same(x));
}

TEST_CASE("gradcheck: tiny ResNet (basic blocks) end to end, BN in training mode") {
  manual_seed(10);
  ModelPtr m = tiny_resnet_basic();
  m->to(DType::f64);
  Tensor x = random_leaf({2, 3, 8, 8});
  CHECK_GRADCHECK([&] { return m->forward(x); }, params_and(*m, x));
}

TEST_CASE("gradcheck: tiny ResNet (bottleneck blocks) end to end, BN in training mode") {
  manual_seed(11);
  ModelPtr m = tiny_resnet_bottleneck();
  m->to(DType::f64);
  Tensor x = random_leaf({2, 3, 8, 8});
  CHECK_GRADCHECK([&] { return m->forward(x); }, params_and(*m, x));
}

TEST_CASE("gradcheck: tiny MobileNetV2 end to end, BN in training mode") {
  manual_seed(12);
  ModelPtr m = tiny_mobilenet_v2();
  m->to(DType::f64);
  Tensor x = random_leaf({2, 3, 8, 8});
  CHECK_GRADCHECK([&] { return m->forward(x); }, params_and(*m, x));
}

TEST_CASE("gradcheck: tiny EfficientNet end to end with SE, drop path and dropout under fixed masks") {
  manual_seed(13);
  auto m = tiny_efficientnet(/*drop_path=*/0.9, /*dropout=*/0.5);
  m->to(DType::f64);
  Tensor x = random_leaf({2, 3, 8, 8});
  // The first draws of a forward are the drop path of block 2 (p = 0.3); pick a seed
  // where it drops one sample of the two and keeps the other.
  uint64_t seed = 0;
  for (;; ++seed) {
    manual_seed(seed);
    std::vector<double> mask = drop_path_mask({2, 1, 1, 1}, 0.3, DType::f64, Device::cpu()).to_vector();
    if ((mask[0] == 0.0) != (mask[1] == 0.0)) break;
  }
  CHECK_GRADCHECK(
      [&] {
        manual_seed(seed);
        return m->forward(x);
      },
      params_and(*m, x));
}

TEST_CASE("one SGD step on a fixed batch lowers the loss, for each family") {
  for (const char* spec : {"resnet20:width=0.25", "resnet50:width=0.0625,depth=0.34",
                           "mobilenetv2:width=0.25,depth=0.34", "efficientnet_b0:width=0.25,depth=0.34"}) {
    CAPTURE(spec);
    manual_seed(2);
    ModelPtr m = make_model(spec, 8);
    auto [before, after] = sgd_step(*m, 0.02);
    CHECK(std::isfinite(before));
    CHECK(after < before);
  }
}

TEST_CASE("train/eval: batch norm uses and updates batch statistics only in training") {
  manual_seed(20);
  ModelPtr m = make_model("resnet20:width=0.25", 10);
  Tensor x = Tensor::uniform({4, 3, 8, 8}, -1, 1);
  Tensor running_mean;
  for (auto& [name, b] : m->named_buffers())
    if (name == "stem.1.running_mean") running_mean = b;
  REQUIRE(running_mean.defined());
  NoGradGuard no_grad;

  m->eval();
  for (auto& [name, sub] : m->named_modules()) CHECK_MESSAGE(!sub->is_training(), name);
  std::vector<double> stats_before = running_mean.to_vector();
  Tensor batch_out = m->forward(x);
  CHECK(running_mean.to_vector() == stats_before);  // eval never updates the statistics
  // Eval: each sample's output is independent of the rest of the batch.
  std::vector<double> alone = m->forward(x.slice(0, 1).contiguous()).to_vector();
  std::vector<double> in_batch = batch_out.slice(0, 1).contiguous().to_vector();
  for (size_t i = 0; i < alone.size(); ++i) CHECK(alone[i] == doctest::Approx(in_batch[i]).epsilon(1e-5));

  m->train();
  for (auto& [name, sub] : m->named_modules()) CHECK_MESSAGE(sub->is_training(), name);
  Tensor train_out = m->forward(x);
  CHECK(running_mean.to_vector() != stats_before);  // training moves the running mean
  // Training: batch statistics, so a sample's output depends on its batch.
  std::vector<double> pair = m->forward(x.slice(0, 2).contiguous()).slice(0, 1).contiguous().to_vector();
  std::vector<double> quad = train_out.slice(0, 1).contiguous().to_vector();
  double diff = 0;
  for (size_t i = 0; i < pair.size(); ++i) diff += std::abs(pair[i] - quad[i]);
  CHECK(diff > 1e-3);
}

TEST_CASE("train/eval: dropout and drop path act only in training") {
  manual_seed(30);
  auto m = tiny_efficientnet(/*drop_path=*/0.0, /*dropout=*/0.5);
  Tensor x = Tensor::uniform({4, 3, 8, 8}, -1, 1);
  NoGradGuard no_grad;
  // Training: BN is deterministic, so two forwards differ only by the dropout mask on the
  // pooled features: each value is kept (x 2, equal in both) or zeroed in one of them.
  m->train();
  manual_seed(1);
  std::vector<double> a = m->features(x).to_vector();
  manual_seed(2);
  std::vector<double> b = m->features(x).to_vector();
  int zeros = 0, differ = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK((a[i] == b[i] || a[i] == 0.0 || b[i] == 0.0));
    zeros += (a[i] == 0.0) + (b[i] == 0.0);
    differ += a[i] != b[i];
  }
  CHECK(zeros > 0);
  CHECK(differ > 0);
  CHECK(zeros < static_cast<int>(2 * a.size()));
  // Eval: no randomness; two forwards agree whatever the seed.
  m->eval();
  manual_seed(1);
  std::vector<double> e1 = m->forward(x).to_vector();
  manual_seed(2);
  CHECK(m->forward(x).to_vector() == e1);

  // Drop path alone (no dropout): training output depends on the seed, eval does not.
  auto dp = tiny_efficientnet(/*drop_path=*/0.9, /*dropout=*/0.0);
  dp->train();
  bool changed = false;
  manual_seed(0);
  std::vector<double> first = dp->forward(x).to_vector();
  for (uint64_t s = 1; s < 8 && !changed; ++s) {
    manual_seed(s);
    changed = dp->forward(x).to_vector() != first;
  }
  CHECK(changed);
  dp->eval();
  manual_seed(0);
  std::vector<double> e0 = dp->forward(x).to_vector();
  manual_seed(5);
  CHECK(dp->forward(x).to_vector() == e0);
}
