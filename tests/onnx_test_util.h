// Shared by the ONNX export tests: small networks of every exportable family with random
// weights and non-trivial batch-norm statistics (so that folding the running mean and
// variance into the convolutions is exercised), and their eval-mode reference output.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "apps/lib/classifier.h"
#include "core/autograd.h"
#include "core/random.h"
#include "interop/onnx_export.h"
#include "layers/layers.h"
#include "models/blocks.h"
#include "models/factory.h"

namespace ag::onnx_test {

// Every batch norm's gamma, beta, running mean and running variance set to random values
// away from their initial 1 / 0 / 0 / 1.
inline void randomize_batch_norms(Module& net) {
  for (auto& [_, m] : net.named_modules()) {
    auto* bn = dynamic_cast<BatchNorm*>(m);
    if (!bn) continue;
    const Shape c = {bn->channels()};
    bn->weight().copy_(Tensor::uniform(c, 0.5, 2.0));
    bn->bias().copy_(Tensor::uniform(c, -0.5, 0.5));
    bn->running_mean().copy_(Tensor::uniform(c, -0.3, 0.3));
    bn->running_var().copy_(Tensor::uniform(c, 0.3, 2.0));
  }
}

struct Case {
  std::string name;
  std::function<ModulePtr()> build;  // a fresh network
  std::vector<int64_t> image;        // C, H, W
  bool normalise = false;            // export with a mean / std and feed [0, 1] pixels
  int standalone_batch_norms = 0;    // exported as BatchNormalization (the rest fold)
};

// The families the tests cover, at narrow widths and small images for speed.
inline std::vector<Case> cases() {
  auto model = [](const std::string& spec, int64_t classes, const std::string& head) {
    return [=]() -> ModulePtr { return make_model(spec, classes, head); };
  };
  auto classifier = [](const std::string& spec, const std::string& loss, int64_t in_channels) {
    return [=]() -> ModulePtr {
      train::TrainConfig config;
      config.model = spec;
      config.loss.kind = loss;
      return train::make_classifier(config, in_channels, 10, 100);
    };
  };
  auto chain = [](std::function<std::vector<ModulePtr>()> layers) {
    return [=]() -> ModulePtr { return std::make_shared<Chain>(layers()); };  // traced calls
  };
  return {
      // Single layers: the activations on values beyond ReLU6's 6 and Hardswish's +-3
      // knees, a grouped conv, a batch norm on its own (BatchNormalization, not folded),
      // both poolings, Flatten and Linear.
      {"layers",
       chain([] {
         return std::vector<ModulePtr>{std::make_shared<Conv2d>(3, 8, 3, 1, 1),
                                       std::make_shared<ReLU6>(),
                                       std::make_shared<Conv2d>(8, 8, 3, 1, 1, 1, 2),
                                       std::make_shared<BatchNorm2d>(8),
                                       std::make_shared<Hardswish>(),
                                       std::make_shared<MaxPool2d>(2),
                                       std::make_shared<Conv2d>(8, 8, 1),
                                       std::make_shared<SiLU>(),
                                       std::make_shared<AvgPool2d>(3, 1, 1, /*count_include_pad=*/false),
                                       std::make_shared<Tanh>(),
                                       std::make_shared<Flatten>(),
                                       std::make_shared<Linear>(8 * 3 * 3, 5)};
       }),
       {3, 6, 6},
       false,
       1},
      {"squeeze-excite",
       chain([] {
         return std::vector<ModulePtr>{std::make_shared<SqueezeExcite>(3, 2),
                                       std::make_shared<GlobalAvgPool2d>()};
       }),
       {3, 4, 4}},
      {"resnet20", model("resnet20:width=0.25", 10, "linear"), {3, 16, 16}},
      {"resnet50 (bottleneck)", model("resnet50:width=0.0625,depth=0.34", 10, "linear"), {3, 16, 16}},
      {"mobilenetv2", model("mobilenetv2:width=0.25,depth=0.34", 10, "linear"), {3, 16, 16}},
      {"efficientnet_b0", model("efficientnet_b0:width=0.25,depth=0.34", 10, "linear"), {3, 16, 16}},
      {"resnet20 + cosine head", model("resnet20:width=0.25", 10, "cosine"), {3, 16, 16}},
      {"classifier resnet20 arcface", classifier("resnet20:width=0.25", "arcface", 3), {3, 16, 16}, true},
      {"classifier convnet+proj ce", classifier("convnet:width=4,features=8", "ce", 1), {1, 12, 12}, true},
  };
}

inline interop::OnnxExportOptions options_for(const Case& c) {
  interop::OnnxExportOptions o;
  o.input_shape = c.image;
  if (c.normalise) {
    o.mean.assign(static_cast<size_t>(c.image[0]), 0.45f);
    o.std.assign(static_cast<size_t>(c.image[0]), 0.25f);
    for (size_t i = 0; i < o.mean.size(); ++i) o.mean[i] += 0.02f * static_cast<float>(i);
  }
  return o;
}

// A batch of n images: [0, 1] pixels when the case normalises in the graph, else roughly
// normalised values.
inline Tensor input_batch(const Case& c, int64_t n) {
  const Shape s = {n, c.image[0], c.image[1], c.image[2]};
  return c.normalise ? Tensor::uniform(s, 0.0, 1.0) : Tensor::normal(s, 0.0, 4.0);
}

// net's eval-mode output for images x, applying the case's normalisation first as the
// data pipeline would.
inline Tensor reference_output(Module& net, const Case& c, const Tensor& x) {
  NoGradGuard no_grad;
  net.eval();
  Tensor input = x;
  if (c.normalise) {
    const interop::OnnxExportOptions o = options_for(c);
    const int64_t ch = c.image[0];
    std::vector<double> mean(o.mean.begin(), o.mean.end()), std(o.std.begin(), o.std.end());
    input = div(sub(x, Tensor::from_vector(mean, {1, ch, 1, 1})), Tensor::from_vector(std, {1, ch, 1, 1}));
  }
  return net.forward(input);
}

}  // namespace ag::onnx_test
