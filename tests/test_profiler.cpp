// The per-op profiler (core/profiler.h): nesting (exclusive = inclusive minus the scopes
// inside), counts, totals that add up, per-layer attribution of forward ops and backward
// nodes, FLOP counts of convolutions, other threads kept apart, pause/resume, and nothing
// recorded while it is off. No test reads a timing figure beyond its sign and sums.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <thread>

#include "core/profiler.h"
#include "core/random.h"
#include "losses/cross_entropy.h"
#include "models/blocks.h"
#include "models/trace.h"

using namespace ag;

namespace {

// A tiny conv net that has every op type of the model families' training steps: ConvBn with
// a fused ReLU, a ResNet basic block (residual add), a depthwise ConvBn with SiLU, global
// average pooling and a linear head.
class TinyNet : public Module {
 public:
  TinyNet() {
    stem_ = register_module("stem", std::make_shared<ConvBn>(3, 4, 3, 1, 1, Activation::relu));
    block_ = register_module("block", std::make_shared<BasicBlock>(4, 8, 2));
    dw_ = register_module("dw", std::make_shared<ConvBn>(8, 8, 3, 1, 8, Activation::silu));
    pool_ = register_module("pool", std::make_shared<GlobalAvgPool2d>());
    fc_ = register_module("fc", std::make_shared<Linear>(8, 3));
  }
  Tensor forward(const Tensor& x) override {  // x: [N, 3, H, W] -> [N, 3]
    Tensor h = call_layer(*dw_, call_layer(*block_, call_layer(*stem_, x)));
    return call_layer(*fc_, call_layer(*pool_, h));
  }
  std::string type_name() const override { return "TinyNet"; }

 private:
  Module *stem_, *block_, *dw_, *pool_, *fc_;
};

void train_step(TinyNet& net, const Tensor& x, const Tensor& y) {
  Tensor loss = cross_entropy(net(x), y);
  net.zero_grad();
  loss.backward();
}

const profiler::Entry* find(const profiler::Report& r, profiler::Phase phase, const std::string& name,
                            const std::string& layer) {
  for (const profiler::Entry& e : r.entries)
    if (e.phase == phase && e.name == name && e.layer == layer) return &e;
  return nullptr;
}

std::set<std::string> op_names(const profiler::Report& r, profiler::Phase phase) {
  std::set<std::string> out;
  for (const profiler::Entry& e : r.entries)
    if (e.phase == phase) out.insert(e.name);
  return out;
}

}  // namespace

TEST_CASE("profiler: nested scopes: counts, exclusive = inclusive minus the inner scopes, totals add up") {
  profiler::start();
  for (int i = 0; i < 3; ++i) {
    profiler::Scope outer("outer");
    {
      profiler::Scope inner("inner", 10.0);
      profiler::Scope innermost("innermost");
    }
    profiler::Scope sibling("inner");  // a second call of the same name, inside outer too
  }
  profiler::mark_step();
  profiler::stop();
  const profiler::Report r = profiler::report();
  REQUIRE(r.entries.size() == 3);
  CHECK(r.steps == 1);
  const auto* outer = find(r, profiler::Phase::forward, "outer", "");
  const auto* inner = find(r, profiler::Phase::forward, "inner", "");
  const auto* innermost = find(r, profiler::Phase::forward, "innermost", "");
  REQUIRE((outer && inner && innermost));
  CHECK(outer->count == 3);
  CHECK(inner->count == 6);
  CHECK(innermost->count == 3);
  CHECK(inner->flops == doctest::Approx(30.0));  // only the calls that said so
  CHECK(outer->exclusive_s >= 0);
  CHECK(outer->exclusive_s == doctest::Approx(outer->inclusive_s - inner->inclusive_s).epsilon(1e-9));
  CHECK(inner->exclusive_s == doctest::Approx(inner->inclusive_s - innermost->inclusive_s).epsilon(1e-9));
  CHECK(innermost->exclusive_s == innermost->inclusive_s);
  // The exclusive times add up to the outermost scope's time, which lies within the wall time.
  CHECK(profiler::attributed_seconds(r) == doctest::Approx(outer->inclusive_s).epsilon(1e-9));
  CHECK(outer->inclusive_s <= r.wall_s);
}

TEST_CASE("profiler: off by default and after stop: nothing is recorded, nodes carry no layer") {
  CHECK_FALSE(profiler::enabled());
  profiler::start();
  profiler::stop();
  CHECK_FALSE(profiler::enabled());
  manual_seed(1);
  TinyNet net;
  name_layers_for_profile(net);
  Tensor x = Tensor::normal({2, 3, 8, 8}, 0, 1);
  Tensor out = net(x);
  CHECK(out.grad_fn()->profile_layer == -1);
  train_step(net, x, Tensor::from_labels({0, 2}));
  CHECK(profiler::report().entries.empty());
}

TEST_CASE("profiler: a tiny conv net's step: every op type in forward and backward, per layer, FLOPs") {
  manual_seed(2);
  TinyNet net;
  net.train();
  name_layers_for_profile(net);
  const int64_t n = 2, h = 8;
  Tensor x = Tensor::normal({n, 3, h, h}, 0, 1);
  Tensor y = Tensor::from_labels({0, 2});
  profiler::start();
  for (int step = 0; step < 2; ++step) {
    train_step(net, x, y);
    profiler::mark_step();
  }
  profiler::stop();
  const profiler::Report r = profiler::report();
  CHECK(r.steps == 2);

  const std::set<std::string> forward = op_names(r, profiler::Phase::forward);
  for (const char* op : {"conv2d", "batch_norm", "silu", "residual_add", "global_avg_pool2d", "mean",
                         "linear", "softmax_cross_entropy", "allocate"})
    CHECK_MESSAGE(forward.count(op) == 1, "forward misses ", op);
  const std::set<std::string> backward = op_names(r, profiler::Phase::backward);
  for (const char* op : {"Conv2dBackward", "BatchNormBackward", "ActivationBackward", "ResidualAddBackward",
                         "ReduceBackward", "LinearBackward", "CrossEntropyBackward", "AccumulateGrad",
                         "autograd engine", "gradient sum (tensor used twice)"})
    CHECK_MESSAGE(backward.count(op) == 1, "backward misses ", op);

  // Per layer: the stem convolution's forward and backward are charged to it, and every
  // convolution in the net ran once per step in each direction.
  const auto* stem_fwd = find(r, profiler::Phase::forward, "conv2d", "stem.0 (Conv2d)");
  const auto* stem_bwd = find(r, profiler::Phase::backward, "Conv2dBackward", "stem.0 (Conv2d)");
  REQUIRE((stem_fwd && stem_bwd));
  CHECK(stem_fwd->count == 2);
  CHECK(stem_bwd->count == 2);
  CHECK(find(r, profiler::Phase::forward, "residual_add", "block (BasicBlock)") != nullptr);
  CHECK(find(r, profiler::Phase::backward, "AccumulateGrad", "fc (Linear)") != nullptr);
  std::map<std::string, int64_t> calls;
  for (const profiler::Row& row : profiler::by_op(r))
    calls[std::string(profiler::phase_name(row.phase)) + row.key] = row.count;
  CHECK(calls["forwardconv2d"] == 2 * 5);  // stem, block c1 / c2 / short, dw
  CHECK(calls["backwardConv2dBackward"] == calls["forwardconv2d"]);

  // FLOPs of the stem: 2 N C_out H W C_in 3 3 per forward; its backward computes the weight
  // gradient only (the input needs none), one forward's worth.
  const double stem_flops = 2.0 * n * 4 * h * h * 3 * 9;
  CHECK(stem_fwd->flops == doctest::Approx(2 * stem_flops));
  CHECK(stem_bwd->flops == doctest::Approx(2 * stem_flops));

  // Totals: the op table and the layer table sum to the same attributed time, within the wall.
  double ops = 0, layers = 0;
  for (const profiler::Row& row : profiler::by_op(r)) ops += row.exclusive_s;
  for (const profiler::Row& row : profiler::by_layer(r)) layers += row.exclusive_s;
  CHECK(ops == doctest::Approx(layers).epsilon(1e-9));
  CHECK(ops == doctest::Approx(profiler::attributed_seconds(r)).epsilon(1e-9));
  CHECK(profiler::attributed_seconds(r) <= r.wall_s);
  const std::string text = profiler::format(r);
  CHECK(text.find("Conv2dBackward") != std::string::npos);
  CHECK(text.find("stem.0 (Conv2d)") != std::string::npos);
}

TEST_CASE("profiler: other threads are kept apart; paused stretches are left out") {
  profiler::start();
  std::thread worker([] { profiler::Scope scope("loader work"); });
  worker.join();
  profiler::pause();
  { profiler::Scope skipped("while paused"); }
  profiler::resume();
  {
    profiler::PhaseScope other(profiler::Phase::other);
    profiler::Scope wait("data loader wait");
  }
  profiler::stop();
  const profiler::Report r = profiler::report();
  CHECK(find(r, profiler::Phase::background, "loader work", "") != nullptr);
  CHECK(find(r, profiler::Phase::other, "data loader wait", "") != nullptr);
  for (const profiler::Entry& e : r.entries) CHECK(e.name != "while paused");
}
