// Models: exact parameter counts and MACs of the CIFAR ResNets, MobileNetV2 and
// EfficientNet-B0 (the published / reference figures), output shapes for 10 and 100
// classes, the architecture rules (projection shortcuts, residual conditions, SE widths,
// stochastic-depth schedule), parameter names, the factory and the summary.
// Training behaviour (gradient checks, SGD, train/eval) is in test_models_train.cpp.
#include <doctest/doctest.h>

#include <map>
#include <set>

#include "layers/layers.h"
#include "models/efficientnet.h"
#include "models/factory.h"
#include "models/mobilenet_v2.h"
#include "models/resnet.h"
#include "models/summary.h"

using namespace ag;

namespace {

// Parameters of a CIFAR basic-block ResNet, counted by hand from the architecture: conv
// weights (no bias), BN gamma and beta, 1x1 conv + BN projections where the shape changes,
// and a linear head with bias. stages: (channels, blocks); the first stage has stride 1.
int64_t basic_resnet_params(int64_t stem, const std::vector<std::pair<int64_t, int64_t>>& stages,
                            int64_t classes) {
  auto conv_bn = [](int64_t ci, int64_t co, int64_t k) { return ci * co * k * k + 2 * co; };
  int64_t total = conv_bn(3, stem, 3), cin = stem;
  for (size_t s = 0; s < stages.size(); ++s) {
    const auto [c, n] = stages[s];
    for (int64_t b = 0; b < n; ++b) {
      total += conv_bn(cin, c, 3) + conv_bn(c, c, 3);
      if (cin != c || (b == 0 && s > 0)) total += conv_bn(cin, c, 1);
      cin = c;
    }
  }
  return total + cin * classes + classes;
}

bool has_name(const Module& m, const std::string& name) {
  for (auto& [n, _] : m.named_parameters())
    if (n == name) return true;
  return false;
}

template <typename T>
std::vector<T*> modules_of(Module& m) {
  std::vector<T*> out;
  for (auto& [_, sub] : m.named_modules())
    if (auto* t = dynamic_cast<T*>(sub)) out.push_back(t);
  return out;
}

// One eval-mode forward without a graph.
Tensor infer(Module& m, const Shape& input) {
  NoGradGuard no_grad;
  m.eval();
  Tensor y = m.forward(Tensor::uniform(input, -1, 1));
  m.train();
  return y;
}

// Large models are built once and shared by the test cases (initialising tens of millions
// of weights is most of their cost); tests only read them.
ModelPtr shared_model(const std::string& spec, int64_t classes) {
  static std::map<std::pair<std::string, int64_t>, ModelPtr> cache;
  ModelPtr& m = cache[{spec, classes}];
  if (!m) m = make_model(spec, classes);
  return m;
}

struct Reference {
  const char* name;
  int64_t params10, params100, macs10;
};

}  // namespace

TEST_CASE("models: exact parameter counts, MACs and output shapes of the three reference models") {
  // The figures of the issue (= the PyTorch reference, shared/tools/torch_peer.py).
  const Reference refs[] = {{"resnet18", 11173962, 11220132, 555422720},
                            {"mobilenetv2", 2236682, 2351972, 87976448},
                            {"efficientnet_b0", 4020358, 4135648, 31979392}};
  for (const Reference& r : refs) {
    CAPTURE(r.name);
    ModelPtr m10 = shared_model(r.name, 10);
    CHECK(m10->parameter_count() == r.params10);
    // summarize runs one traced forward of a [1, 3, 32, 32] batch: shape and MACs from it.
    const ModelSummary s = summarize(*m10);
    CHECK(s.total_params == r.params10);
    CHECK(s.trainable_params == r.params10);
    CHECK(s.total_macs == r.macs10);
    CHECK(s.layers.at(0).output == Shape{1, 10});

    ModelPtr m100 = make_model(r.name, 100);
    CHECK(m100->parameter_count() == r.params100);
    CHECK(infer(*m100, {1, 3, 32, 32}).shape() == Shape{1, 100});
    // The 100-class head adds 90 * (feature_dim + 1) parameters and 90 * feature_dim MACs.
    CHECK(r.params100 - r.params10 == 90 * (m10->feature_dim() + 1));
  }
}

TEST_CASE("models: batch-norm running statistics are buffers, not parameters") {
  ModelPtr m = shared_model("resnet18", 10);
  int64_t bn_channels = 0;
  for (BatchNorm2d* bn : modules_of<BatchNorm2d>(*m)) bn_channels += bn->channels();
  int64_t buffers = 0;
  for (auto& [name, b] : m->named_buffers()) {
    CHECK(!b.requires_grad());
    buffers += b.numel();
  }
  CHECK(buffers == 2 * bn_channels);
  CHECK(bn_channels == 64 + 4 * 64 + (4 * 128 + 128) + (4 * 256 + 256) + (4 * 512 + 512));
  for (auto& [name, p] : m->named_parameters()) CHECK(name.find("running") == std::string::npos);
}

TEST_CASE("models: ResNet34 / ResNet50 published CIFAR counts, ResNet-20 and width knobs by hand") {
  CHECK(make_model("resnet34", 10)->parameter_count() == 21282122);
  CHECK(shared_model("resnet50", 10)->parameter_count() == 23520842);
  CHECK(shared_model("resnet50", 10)->feature_dim() == 2048);
  // ResNet-20 with projection shortcuts (option B): 272,474 (the paper's "0.27M").
  ModelPtr r20 = make_model("resnet20", 10);
  CHECK(r20->parameter_count() == 272474);
  CHECK(r20->parameter_count() == basic_resnet_params(16, {{16, 3}, {32, 3}, {64, 3}}, 10));
  CHECK(make_model("resnet56", 100)->parameter_count() ==
        basic_resnet_params(16, {{16, 9}, {32, 9}, {64, 9}}, 100));
  CHECK(infer(*r20, {2, 3, 32, 32}).shape() == Shape{2, 10});
  CHECK(infer(*make_model("resnet20", 100), {1, 3, 32, 32}).shape() == Shape{1, 100});

  ModelPtr quarter = make_model("resnet18:width=0.25", 100);
  CHECK(quarter->feature_dim() == 128);
  CHECK(quarter->parameter_count() == basic_resnet_params(16, {{16, 2}, {32, 2}, {64, 2}, {128, 2}}, 100));
  CHECK(infer(*quarter, {2, 3, 32, 32}).shape() == Shape{2, 100});
  // depth=0.5 halves the blocks per stage (rounded up).
  CHECK(make_model("resnet34:depth=0.5", 10)->parameter_count() ==
        basic_resnet_params(64, {{64, 2}, {128, 2}, {256, 3}, {512, 2}}, 10));
}

TEST_CASE("models: MobileNetV2 / EfficientNet width knobs match the torchvision rounding") {
  // Counted independently (a Python transcription of the reference with torchvision's
  // _make_divisible): channels round to multiples of 8.
  ModelPtr mb = make_model("mobilenetv2:width=0.5", 10);
  CHECK(mb->parameter_count() == 700490);
  CHECK(mb->feature_dim() == 1280);  // the last conv keeps 1280 for width <= 1
  CHECK(make_model("mobilenetv2:width=0.5,depth=0.5", 10)->parameter_count() == 547402);
  ModelPtr ef = make_model("efficientnet_b0:width=0.5", 10);
  CHECK(ef->parameter_count() == 1077932);
  CHECK(ef->feature_dim() == 640);  // 4x the last stage (160)
  CHECK(infer(*mb, {1, 3, 32, 32}).shape() == Shape{1, 10});
  CHECK(infer(*ef, {2, 3, 16, 16}).shape() == Shape{2, 10});
}

TEST_CASE("models: make_divisible rounds to the nearest multiple, at least the divisor, within 10%") {
  CHECK(make_divisible(16) == 16);
  CHECK(make_divisible(12) == 16);      // 12 + 4 = 16 -> 16
  CHECK(make_divisible(11.9) == 16);    // int(15.9) / 8 * 8 = 8 < 0.9 * 11.9: one step up
  CHECK(make_divisible(3) == 8);        // never below the divisor
  CHECK(make_divisible(960) == 960);    // 1280 * 0.75
  CHECK(make_divisible(20, 16) == 32);  // 28 // 16 * 16 = 16 < 0.9 * 20 = 18 -> 32
  CHECK(make_divisible(6, 2) == 6);
  CHECK_THROWS_AS(make_divisible(0), Error);
}

TEST_CASE("models: ResNet projection shortcuts only where the shape changes; names as the reference") {
  ModelPtr m = shared_model("resnet18", 10);
  for (const char* name :
       {"stem.0.weight", "stem.1.weight", "stem.1.bias", "blocks.0.c1.0.weight", "blocks.3.c1.0.weight",
        "blocks.3.c2.1.bias", "blocks.2.short.0.weight", "blocks.2.short.1.weight", "blocks.4.short.0.weight",
        "blocks.6.short.0.weight", "fc.weight", "fc.bias"})
    CHECK_MESSAGE(has_name(*m, name), name);
  for (const char* name : {"blocks.0.short.0.weight", "blocks.1.short.0.weight", "blocks.3.short.0.weight"})
    CHECK_MESSAGE(!has_name(*m, name), name);
  // Conv weights of the stem and a stage-2 projection, shapes as in PyTorch.
  for (auto& [n, p] : m->named_parameters()) {
    if (n == "stem.0.weight") CHECK(p.shape() == Shape{64, 3, 3, 3});
    if (n == "blocks.2.short.0.weight") CHECK(p.shape() == Shape{128, 64, 1, 1});
    if (n == "fc.weight") CHECK(p.shape() == Shape{10, 512});
  }
  CHECK(modules_of<BasicBlock>(*m).size() == 8);
  CHECK(modules_of<MaxPool2d>(*m).empty());  // CIFAR stem: no max-pool

  ModelPtr r50 = shared_model("resnet50", 10);
  std::vector<Bottleneck*> bottlenecks = modules_of<Bottleneck>(*r50);
  CHECK(bottlenecks.size() == 16);
  // Every stage's first block projects (stage 1: 64 -> 256 channels); no other does.
  for (const char* name : {"blocks.0.short.0.weight", "blocks.3.short.0.weight", "blocks.7.short.0.weight",
                           "blocks.13.short.0.weight", "blocks.2.c3.0.weight"})
    CHECK_MESSAGE(has_name(*r50, name), name);
  CHECK(!has_name(*r50, "blocks.1.short.0.weight"));
}

TEST_CASE("models: MobileNetV2 residuals only at stride 1 with equal channels; CIFAR strides") {
  auto m = std::dynamic_pointer_cast<MobileNetV2>(make_model("mobilenetv2", 10));
  REQUIRE(m != nullptr);
  std::vector<InvertedResidual*> blocks = modules_of<InvertedResidual>(*m);
  CHECK(blocks.size() == 17);
  int residuals = 0;
  for (InvertedResidual* b : blocks) {
    const InvertedResidualOptions& o = b->options();
    CHECK(b->has_residual() == (o.stride == 1 && o.in_channels == o.out_channels));
    CHECK(o.se_channels == 0);
    CHECK(o.act == Activation::relu6);
    residuals += b->has_residual();
  }
  CHECK(residuals == 10);  // repeats - 1 per stage: 0 + 1 + 2 + 3 + 2 + 2 + 0
  // The expansion-1 block has no expand conv: its body starts with the depthwise conv.
  for (const char* name : {"body.0.0.weight", "body.1.body.0.0.weight", "body.1.body.1.0.weight",
                           "body.2.body.2.0.weight", "body.18.0.weight", "fc.weight"})
    CHECK_MESSAGE(has_name(*m, name), name);
  CHECK(!has_name(*m, "body.1.body.2.0.weight"));
  // CIFAR: the stem and the 24-channel stage keep 32x32; three stride-2 stages leave 4x4.
  const ModelSummary s = summarize(*m);
  for (const LayerSummary& l : s.layers) {
    if (l.name == "body.0") CHECK(l.output == Shape{1, 32, 32, 32});
    if (l.name == "body.3") CHECK(l.output == Shape{1, 24, 32, 32});
    if (l.name == "body.18") CHECK(l.output == Shape{1, 1280, 4, 4});
  }
}

TEST_CASE("models: EfficientNet-B0 SE width, kernels, activations and stochastic-depth schedule") {
  auto m = std::dynamic_pointer_cast<EfficientNet>(make_model("efficientnet_b0", 10));
  REQUIRE(m != nullptr);
  std::vector<InvertedResidual*> blocks = modules_of<InvertedResidual>(*m);
  REQUIRE(blocks.size() == 16);
  std::vector<SqueezeExcite*> se = modules_of<SqueezeExcite>(*m);
  CHECK(se.size() == 16);
  int residuals = 0, k5 = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const InvertedResidualOptions& o = blocks[i]->options();
    CHECK(o.se_channels == std::max<int64_t>(1, o.in_channels / 4));
    CHECK(o.act == Activation::silu);
    CHECK(o.drop_path == doctest::Approx(0.2 * static_cast<double>(i) / 16));
    k5 += o.kernel == 5;
    residuals += blocks[i]->has_residual();
  }
  CHECK(k5 == 2 + 3 + 4);  // the 40-, 112- and 192-channel stages
  CHECK(residuals == 9);
  // A DropPath exists exactly on the residual blocks with p > 0, at that block's p.
  std::vector<DropPath*> drops = modules_of<DropPath>(*m);
  CHECK(drops.size() == 9);
  double last = 0;
  for (DropPath* d : drops) {
    CHECK(d->p() > last);
    CHECK(d->p() < 0.2);
    last = d->p();
  }
  CHECK(last == doctest::Approx(0.2 * 14 / 16));  // block 15 (320 channels) has no shortcut
  CHECK(modules_of<Dropout>(*m).size() == 1);
  CHECK(modules_of<Dropout>(*m)[0]->p() == doctest::Approx(0.2));
  for (const char* name : {"body.1.body.1.fc1.weight", "body.1.body.1.fc2.bias", "body.2.body.2.fc1.weight",
                           "body.17.0.weight", "fc.weight"})
    CHECK_MESSAGE(has_name(*m, name), name);
}

TEST_CASE("models: factory heads, knobs and errors") {
  ModelPtr features_only = make_model("resnet20:width=0.5", 0, "none");
  CHECK(features_only->head() == nullptr);
  CHECK(features_only->feature_dim() == 32);
  CHECK(infer(*features_only, {3, 3, 16, 16}).shape() == Shape{3, 32});
  // Any head attaches once, as "fc".
  features_only->set_head(std::make_shared<Linear>(32, 7));
  CHECK(has_name(*features_only, "fc.weight"));
  CHECK(infer(*features_only, {3, 3, 16, 16}).shape() == Shape{3, 7});
  CHECK_THROWS_WITH_AS(features_only->set_head(std::make_shared<Linear>(32, 7)),
                       doctest::Contains("already has a head"), Error);

  ModelPtr cosine = make_model("resnet20:width=0.25", 5, "cosine");
  Tensor cos = infer(*cosine, {4, 3, 16, 16});
  CHECK(cos.shape() == Shape{4, 5});
  for (double v : cos.to_vector()) CHECK(std::abs(v) <= 1.0 + 1e-6);
  CHECK(!has_name(*cosine, "fc.bias"));

  ModelPtr grey = make_model("mobilenetv2:width=0.25,depth=0.34,in_channels=1", 10);
  CHECK(infer(*grey, {2, 1, 28, 28}).shape() == Shape{2, 10});
  CHECK_THROWS_WITH_AS(infer(*grey, {2, 3, 28, 28}), doctest::Contains("[N, 1, H, W]"), Error);

  ModelOptions o;
  CHECK(parse_model_spec("efficientnet_b0:width=0.5,drop_path=0.1,dropout=0", o) == "efficientnet_b0");
  CHECK(o.width == 0.5);
  CHECK(o.drop_path == 0.1);
  CHECK(o.dropout == 0);
  auto eff =
      std::dynamic_pointer_cast<EfficientNet>(make_model("efficientnet_b0:drop_path=0.1,dropout=0", 10));
  CHECK(eff->config().drop_path == 0.1);
  CHECK(eff->config().dropout == 0);

  CHECK_THROWS_WITH_AS(make_model("resnet19", 10), doctest::Contains("valid names: resnet18, resnet34"),
                       Error);
  CHECK_THROWS_WITH_AS(make_model("vgg16", 10), doctest::Contains("efficientnet_b0"), Error);
  CHECK_THROWS_WITH_AS(make_model("resnet18:wdith=2", 10), doctest::Contains("unknown knob 'wdith'"), Error);
  CHECK_THROWS_WITH_AS(make_model("resnet18:width=abc", 10), doctest::Contains("needs a number"), Error);
  CHECK_THROWS_WITH_AS(make_model("resnet18:width=0", 10), doctest::Contains("must be positive"), Error);
  CHECK_THROWS_WITH_AS(make_model("resnet18:dropout=0.3", 10), doctest::Contains("no dropout"), Error);
  CHECK_THROWS_WITH_AS(make_model("resnet18", 10, "softmax"), doctest::Contains("valid heads: linear"),
                       Error);
  CHECK_THROWS_WITH_AS(make_model("resnet18", 0), doctest::Contains("num_classes must be positive"), Error);
  CHECK_THROWS_WITH_AS(make_model("efficientnet_b0:drop_path=1", 10), doctest::Contains("drop_path"), Error);
  std::set<std::string> names;
  for (const std::string& n : model_names()) names.insert(n);
  for (const char* n : {"resnet18", "resnet34", "resnet50", "resnet20", "mobilenetv2", "efficientnet_b0"})
    CHECK(names.count(n) == 1);
}

TEST_CASE("models: summary rows, totals and depth limit") {
  ModelPtr m = make_model("resnet20", 10);
  m->train();
  const ModelSummary s = summarize(*m, {2, 3, 32, 32});
  CHECK(m->is_training());  // the training mode is restored
  REQUIRE(!s.layers.empty());
  CHECK(s.layers[0].name.empty());
  CHECK(s.layers[0].type == "ResNet");
  CHECK(s.layers[0].output == Shape{2, 10});
  // Leaf rows partition the parameters and the MACs.
  int64_t leaf_params = 0, leaf_macs = 0;
  for (const LayerSummary& l : s.layers)
    if (l.leaf) {
      leaf_params += l.params;
      leaf_macs += l.macs;
    }
  CHECK(leaf_params == 272474);
  CHECK(leaf_macs == s.total_macs);
  CHECK(s.total_macs == 2 * count_macs(*m));  // MACs scale with the batch
  // Stem conv of ResNet-20 on a batch of 2: 2 * 16 * 32 * 32 * 3 * 3 * 3 MACs, by hand.
  for (const LayerSummary& l : s.layers) {
    if (l.name == "stem.0") CHECK(l.macs == 2 * 16 * 32 * 32 * 27);
    if (l.name == "fc") CHECK(l.macs == 2 * 64 * 10);
    if (l.name == "blocks.3") CHECK(l.output == Shape{2, 32, 16, 16});
  }
  const std::string text = format_summary(s, 1);
  CHECK(text.find("Total params: 272,474") != std::string::npos);
  CHECK(text.find("blocks: Sequential") != std::string::npos);
  CHECK(text.find("blocks.0") == std::string::npos);  // depth 2: hidden
  CHECK(format_summary(s, 4).find("blocks.0.c1.0: Conv2d") != std::string::npos);
  CHECK(with_commas(1234567) == "1,234,567");
  CHECK(with_commas(999) == "999");
  CHECK(with_commas(-1000) == "-1,000");
}
