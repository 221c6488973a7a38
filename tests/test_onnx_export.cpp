// ONNX export (interop/onnx_export.h), checked without a runtime: every family exports and
// passes onnx::checker (export_onnx runs it; the file written is checked again by path),
// opset 13, a symbolic batch dimension, batch norms folded away, the normalisation as the
// first nodes, and clear errors for a module with no ONNX form and for bad options. The
// numbers are checked by an independent runtime in test_onnx_opencv.cpp.
#include <doctest/doctest.h>
#include <onnx/checker.h>

#include <fstream>
#include <map>

#include "onnx_test_util.h"
#include "test_data_util.h"

using namespace ag;
using namespace ag::interop;

namespace {

std::map<std::string, int> op_counts(const onnx::ModelProto& m) {
  std::map<std::string, int> counts;
  for (const onnx::NodeProto& n : m.graph().node()) ++counts[n.op_type()];
  return counts;
}

template <typename T>
int count_modules(Module& net) {
  int n = 0;
  for (auto& [_, m] : net.named_modules()) n += dynamic_cast<T*>(m) != nullptr;
  return n;
}

// A module with no ONNX form.
class Wobble : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
  std::string type_name() const override { return "Wobble"; }
};

}  // namespace

TEST_CASE("onnx export: every family passes the checker with opset 13 and a symbolic batch") {
  for (const onnx_test::Case& c : onnx_test::cases()) {
    CAPTURE(c.name);
    manual_seed(7);
    ModulePtr net = c.build();
    onnx_test::randomize_batch_norms(*net);
    const onnx::ModelProto m = export_onnx(*net, onnx_test::options_for(c));
    REQUIRE(m.opset_import_size() == 1);
    CHECK(m.opset_import(0).version() == kOnnxOpset);
    CHECK(kOnnxOpset >= 13);
    REQUIRE(m.graph().input_size() == 1);
    REQUIRE(m.graph().output_size() == 1);
    const auto& in = m.graph().input(0).type().tensor_type().shape();
    REQUIRE(in.dim_size() == 4);
    CHECK(in.dim(0).dim_param() == "batch");
    for (int d = 1; d < 4; ++d) CHECK(in.dim(d).dim_value() == c.image[static_cast<size_t>(d - 1)]);
    const auto& out = m.graph().output(0).type().tensor_type().shape();
    REQUIRE(out.dim_size() == 2);
    CHECK(out.dim(0).dim_param() == "batch");
    CHECK(out.dim(1).dim_value() ==
          onnx_test::reference_output(*net, c, onnx_test::input_batch(c, 1)).size(1));
    CHECK(m.graph().output(0).name() == "logits");

    // Every conv of the network is one Conv node (plus the normalisation's), every
    // ConvBn's batch norm folded into it; nothing is left in training form.
    const auto ops = op_counts(m);
    CHECK(ops.at("Conv") == count_modules<Conv2d>(*net) + (c.normalise ? 1 : 0));
    CHECK((ops.count("BatchNormalization") ? ops.at("BatchNormalization") : 0) == c.standalone_batch_norms);
    CHECK(ops.count("Dropout") == 0);
    // The normalisation, when asked for, is the graph's first node.
    CHECK((m.graph().node(0).name() == "input_normalised") == c.normalise);
  }
}

TEST_CASE("onnx export: the op set of each family") {
  manual_seed(1);
  auto ops_of = [](const std::string& spec, const std::string& head) {
    ModulePtr net = make_model(spec, 10, head);
    OnnxExportOptions o;
    o.input_shape = {3, 16, 16};
    return op_counts(export_onnx(*net, o));
  };
  const auto mobilenet = ops_of("mobilenetv2:width=0.25,depth=0.34", "linear");
  CHECK(mobilenet.count("Relu") == 1);  // ReLU6 = relu(x) - relu(x - 6)
  CHECK(mobilenet.count("Clip") == 0);
  const auto efficientnet = ops_of("efficientnet_b0:width=0.25,depth=0.34", "linear");
  CHECK(efficientnet.count("Sigmoid") == 1);        // SiLU = x * sigmoid(x), and the SE gate
  CHECK(efficientnet.at("GlobalAveragePool") > 1);  // the SE squeezes and the final pool
  const auto cosine = ops_of("resnet20:width=0.25", "cosine");
  CHECK(cosine.count("Sqrt") == 1);  // the feature norm
  CHECK(cosine.at("Gemm") == 1);
}

TEST_CASE("onnx export: depthwise and grouped convolutions keep their group count") {
  manual_seed(2);
  ModulePtr net = make_model("mobilenetv2:width=0.25,depth=0.34", 10, "linear");
  OnnxExportOptions o;
  o.input_shape = {3, 16, 16};
  const onnx::ModelProto m = export_onnx(*net, o);
  int depthwise = 0;
  for (const onnx::NodeProto& n : m.graph().node())
    for (const onnx::AttributeProto& a : n.attribute())
      if (a.name() == "group" && a.i() > 1) ++depthwise;
  int expected = 0;
  for (auto& [_, mod] : net->named_modules())
    if (auto* c = dynamic_cast<Conv2d*>(mod); c && c->groups() > 1) ++expected;
  CHECK(expected > 0);
  CHECK(depthwise == expected);
}

TEST_CASE("onnx export: save_onnx writes a file the checker and the parser accept") {
  manual_seed(3);
  ModulePtr net = make_model("resnet20:width=0.25", 10, "linear");
  OnnxExportOptions o;
  o.input_shape = {3, 16, 16};
  o.metadata = {{"class_names", "[\"a\",\"b\"]"}};
  const onnx::ModelProto m = export_onnx(*net, o);
  const ag_test::TempDir tmp;
  const std::string path = tmp.file("model.onnx");
  save_onnx(m, path);
  onnx::checker::check_model(path);
  std::ifstream in(path, std::ios::binary);
  onnx::ModelProto back;
  REQUIRE(back.ParseFromIstream(&in));
  CHECK(back.graph().node_size() == m.graph().node_size());
  REQUIRE(back.metadata_props_size() == 1);
  CHECK(back.metadata_props(0).value() == "[\"a\",\"b\"]");
}

TEST_CASE("onnx export: a module with no ONNX form is an error naming it and its type") {
  ModulePtr net = make_model("resnet20:width=0.25", 10, "none");
  std::static_pointer_cast<Model>(net)->set_head(std::make_shared<Wobble>());
  OnnxExportOptions o;
  o.input_shape = {3, 16, 16};
  try {
    export_onnx(*net, o);
    FAIL("export_onnx accepted a Wobble");
  } catch (const Error& e) {
    const std::string what = e.what();
    CHECK(what.find("cannot export module 'fc' of type Wobble") != std::string::npos);
  }
}

TEST_CASE("onnx export: bad options are errors naming what is wrong") {
  ModulePtr net = make_model("resnet20:width=0.25", 10, "linear");
  OnnxExportOptions o;
  CHECK_THROWS_WITH_AS(export_onnx(*net, o), doctest::Contains("input_shape must be C, H, W"), Error);
  o.input_shape = {3, 16, 16};
  o.mean = {0.5f};
  o.std = {0.5f};
  CHECK_THROWS_WITH_AS(export_onnx(*net, o), doctest::Contains("one value per channel (3)"), Error);
  o.mean = {0.5f, 0.5f, 0.5f};
  o.std = {0.5f, 0.0f, 0.5f};
  CHECK_THROWS_WITH_AS(export_onnx(*net, o), doctest::Contains("every std must be > 0"), Error);
  o.input_shape = {1, 16, 16};  // the network takes 3 channels
  o.mean.clear();
  o.std.clear();
  CHECK_THROWS_AS(export_onnx(*net, o), Error);
}

TEST_CASE("onnx export: the module's training mode is left as it was") {
  ModulePtr net = make_model("resnet20:width=0.25", 10, "linear");
  net->train();
  OnnxExportOptions o;
  o.input_shape = {3, 16, 16};
  export_onnx(*net, o);
  CHECK(net->is_training());
}
