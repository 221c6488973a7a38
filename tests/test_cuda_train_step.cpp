// CPU-vs-CUDA parity of one full training step (loss and every parameter gradient) of a
// narrow ResNet and a narrow MobileNetV2: every layer kernel together, as training runs
// them. Skipped with a printed reason when no GPU is present.
#include "cuda_parity.h"
#include "losses/cross_entropy.h"
#include "models/factory.h"

using namespace ag;
using namespace ag::testing;

namespace {

// One training step (forward, cross-entropy, backward) of `spec` on the CPU, then the same
// weights moved to the GPU: same loss and same gradient for every parameter.
void check_training_step(const std::string& spec, DType dt, Tol tol) {
  manual_seed(1234);
  ModelPtr model = make_model(spec, 10);
  model->to(dt);
  model->train();
  Tensor x = rand_cpu({8, 3, 16, 16}, dt);
  Tensor labels = Tensor::from_labels({0, 1, 2, 3, 4, 5, 6, 7});
  auto step = [&](Device d) {
    model->zero_grad();
    Tensor loss = cross_entropy(model->forward(x.to(d)), labels.to(d));
    loss.backward();
    std::vector<Tensor> out = {loss.to(Device::cpu())};
    for (const auto& [name, p] : model->named_parameters()) {
      REQUIRE_MESSAGE(p.grad().defined(), spec << ": " << name << " got no gradient on " << d);
      out.push_back(p.grad().to(Device::cpu()));
    }
    return out;
  };
  const std::vector<Tensor> ref = step(Device::cpu());
  model->to(kGpu);
  const std::vector<Tensor> got = step(kGpu);
  REQUIRE(ref.size() == got.size());
  const auto params = model->named_parameters();
  expect_close(spec + " loss " + dtype_name(dt), ref[0], got[0], tol);
  for (size_t i = 1; i < ref.size(); ++i)
    expect_close(spec + " grad " + params[i - 1].first + " " + dtype_name(dt), ref[i], got[i], tol);
}

}  // namespace

TEST_CASE("cuda parity: one training step of a narrow ResNet and MobileNetV2") {
  AG_SKIP_WITHOUT_GPU();
  for (const char* spec :
       {"resnet20:width=0.25", "resnet18:width=0.125", "mobilenetv2:width=0.25,depth=0.5"}) {
    // float64: every gradient to ~1e-9 relative; float32: a few ulps per layer, accumulated.
    check_training_step(spec, DType::f64, {1e-9, 1e-7});
    check_training_step(spec, DType::f32, {1e-3, 1e-2});
  }
}
