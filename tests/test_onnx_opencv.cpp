// The ONNX export checked by an independent runtime: OpenCV's DNN module loads each exported
// network and its outputs on fixed batches match arcgrad's eval-mode outputs within 1e-4,
// relative to the largest output magnitude, for every family (ResNet-20, a bottleneck
// ResNet, MobileNetV2, EfficientNet-B0, a cosine head, Classifiers with and without the
// normalisation in the graph). The batches (3, then 2) differ from the batch of 1 the
// exporter runs, so the symbolic batch dimension is exercised. Built only when OpenCV's DNN
// is found (tests/CMakeLists.txt registers a skip otherwise). The last case goes through a
// run folder as export_onnx does: checkpoint, load_trained_run, the run's options.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "apps/lib/checkpoint.h"
#include "apps/lib/run_data.h"
#include "onnx_test_util.h"
#include "test_data_util.h"

using namespace ag;

namespace {

cv::dnn::Net load_in_opencv(const onnx::ModelProto& model) {
  std::string bytes;
  REQUIRE(model.SerializeToString(&bytes));
  cv::dnn::Net net = cv::dnn::readNetFromONNX(bytes.data(), bytes.size());
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  return net;
}

// OpenCV's output for images x [N, C, H, W], as float32 [N, K] values.
std::vector<float> run_opencv(cv::dnn::Net& net, const Tensor& x) {
  const Tensor xc = x.contiguous();
  const std::vector<int> dims(xc.shape().begin(), xc.shape().end());
  cv::Mat blob(static_cast<int>(dims.size()), dims.data(), CV_32F);
  std::copy_n(xc.data<float>(), xc.numel(), blob.ptr<float>());
  net.setInput(blob, "input");
  cv::Mat out = net.forward("logits");
  REQUIRE(out.isContinuous());
  return std::vector<float>(out.ptr<float>(), out.ptr<float>() + out.total());
}

// max |a - b| / max |b|.
double relative_error(const std::vector<float>& got, const std::vector<double>& want) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, std::abs(static_cast<double>(got[i]) - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return err / std::max(scale, 1e-30);
}

}  // namespace

TEST_CASE("onnx export: OpenCV DNN reproduces arcgrad's outputs for every family") {
  cv::setNumThreads(2);
  for (const onnx_test::Case& c : onnx_test::cases()) {
    CAPTURE(c.name);
    manual_seed(11);
    ModulePtr net = c.build();
    onnx_test::randomize_batch_norms(*net);
    net->eval();
    cv::dnn::Net cv_net = load_in_opencv(interop::export_onnx(*net, onnx_test::options_for(c)));
    double worst = 0;
    for (int64_t batch : {3, 2}) {
      CAPTURE(batch);
      const Tensor x = onnx_test::input_batch(c, batch);
      const Tensor want = onnx_test::reference_output(*net, c, x);
      REQUIRE(want.dim() == 2);
      REQUIRE(want.size(0) == batch);
      const std::vector<double> want_values = want.to_vector();
      const std::vector<float> got = run_opencv(cv_net, x);
      REQUIRE(got.size() == want_values.size());
      const double err = relative_error(got, want_values);
      CHECK(err < 1e-4);
      worst = std::max(worst, err);
    }
    MESSAGE(c.name << ": max relative error " << worst);
  }
}

TEST_CASE("onnx export: a run folder exports as export_onnx does and OpenCV reproduces its scores") {
  const ag_test::TempDir tmp;
  const std::string dir = tmp.file("run");
  manual_seed(5);
  train::TrainConfig config;
  config.model = "efficientnet_b0:width=0.25,depth=0.34";
  config.loss.kind = "cosface";
  auto net = train::make_classifier(config, 3, 4, 1);
  onnx_test::randomize_batch_norms(*net);
  train::TrainState state;
  state.config = config.to_json();
  const ChannelStats stats{{0.49f, 0.48f, 0.45f}, {0.25f, 0.24f, 0.26f}};
  state.extra = {{"stats", train::stats_to_json(stats)},
                 {"class_names", {"a", "b", "c", "d"}},
                 {"image_shape", {3, 16, 16}}};
  train::save_checkpoint(dir, *net, nullptr, state);

  const train::TrainedRun run = train::load_trained_run(dir, Device::cpu());
  const onnx::ModelProto model = interop::export_onnx(*run.net, interop::run_export_options(run, true));
  CHECK(model.doc_string().find("pixels scaled to [0, 1]") != std::string::npos);
  cv::dnn::Net cv_net = load_in_opencv(model);
  const Tensor pixels = Tensor::uniform({3, 3, 16, 16}, 0.0, 1.0);
  Tensor want;
  {
    NoGradGuard no_grad;
    net->eval();
    const Tensor mean = Tensor::from_vector({0.49, 0.48, 0.45}, {1, 3, 1, 1});
    const Tensor std = Tensor::from_vector({0.25, 0.24, 0.26}, {1, 3, 1, 1});
    want = net->forward(div(sub(pixels, mean), std));  // the original, not the reloaded net
  }
  const double err = relative_error(run_opencv(cv_net, pixels), want.to_vector());
  MESSAGE("run folder (efficientnet_b0 + cosface): max relative error " << err);
  CHECK(err < 1e-4);
}
