// The module exporter: walks the module tree and writes each module as ONNX ops. Leaf
// layers go through LayerWriter (onnx_layers.h); blocks are written from their children by
// name, mirroring their forward() in models/blocks.cpp, models/*.cpp and
// apps/lib/classifier.cpp. The OpenCV round-trip test (tests/test_onnx_opencv.cpp) runs
// every family, so a block whose forward() changes without this file fails there.
#include "interop/onnx_export.h"

#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include <cmath>
#include <functional>
#include <sstream>

#include "apps/lib/classifier.h"
#include "core/autograd.h"
#include "core/serialize/atomic_file.h"
#include "interop/onnx_layers.h"
#include "losses/classifier_loss.h"
#include "losses/cosine_head.h"
#include "models/blocks.h"
#include "models/efficientnet.h"
#include "models/mobilenet_v2.h"
#include "models/resnet.h"
#include "models/trace.h"

namespace ag::interop {

namespace {

std::string join(const std::string& path, const std::string& name) {
  return path.empty() ? name : path + "." + name;
}

Module* find_child(Module& m, const std::string& name) {
  for (auto& [child_name, child] : m.named_children())
    if (child_name == name) return child;
  return nullptr;
}

Module& child(Module& m, const std::string& path, const std::string& name) {
  Module* c = find_child(m, name);
  AG_CHECK(c != nullptr, "export_onnx: '" << (path.empty() ? "<root>" : path) << "' (" << m.type_name()
                                          << ") has no child '" << name << "'");
  return *c;
}

// What one eval-mode forward of a sample image tells the exporter: the output shape and
// the input shape of every module called through call_layer (models/trace.h).
struct SampleShapes {
  std::vector<int64_t> output;  // without the batch dim
  std::map<const Module*, Shape> inputs;
};

// The module tree: blocks from their children, leaf layers through LayerWriter.
class Exporter : public LayerWriter {
 public:
  Exporter(OnnxGraph& g, const SampleShapes& shapes) : LayerWriter(g), shapes_(shapes) {}

  // Writes module m (dotted name `path`) applied to the value x; returns its output value.
  std::string emit(Module& m, const std::string& path, const std::string& x);

 private:
  std::string children_in_order(Module& m, const std::string& path, const std::string& x);
  std::string conv_bn(ConvBn& cb, const std::string& path, const std::string& x);
  std::string resnet_block(Module& m, const std::vector<std::string>& body, const std::string& path,
                           const std::string& x);
  std::string inverted_residual(InvertedResidual& b, const std::string& path, const std::string& x);
  std::string residual(Residual& r, const std::string& path, const std::string& x);
  std::string squeeze_excite(SqueezeExcite& se, const std::string& path, const std::string& x);
  std::string convnet(train::ConvNet& net, const std::string& path, const std::string& x);

  const SampleShapes& shapes_;
};

std::string Exporter::emit(Module& m, const std::string& path, const std::string& x) {
  // Order matters where types derive from one another (Chain from Sequential, the models
  // from Model): the most derived first.
  if (auto* c = dynamic_cast<train::Classifier*>(&m)) {
    const std::string f = emit(c->model(), join(path, "model"), x);
    return emit(c->criterion(), join(path, "criterion"), f);
  }
  if (auto* l = dynamic_cast<ClassifierLoss*>(&m)) {
    // ClassifierLoss::forward: the cosine head when there is one, else the linear head.
    if (l->cosine_head()) return cosine(*l->cosine_head(), join(path, "cosine"), x);
    return linear(*l->linear_head(), join(path, "linear"), x, nullptr);
  }
  if (auto* n = dynamic_cast<train::ConvNet*>(&m)) return convnet(*n, path, x);
  // features() of these three is their children in registration order, and the head "fc"
  // (Model::forward) is registered last.
  if (dynamic_cast<ResNet*>(&m) || dynamic_cast<MobileNetV2*>(&m) || dynamic_cast<EfficientNet*>(&m))
    return children_in_order(m, path, x);
  if (dynamic_cast<Sequential*>(&m)) return children_in_order(m, path, x);  // Chain too
  if (auto* cb = dynamic_cast<ConvBn*>(&m)) return conv_bn(*cb, path, x);
  if (dynamic_cast<BasicBlock*>(&m)) return resnet_block(m, {"c1", "c2"}, path, x);
  if (dynamic_cast<Bottleneck*>(&m)) return resnet_block(m, {"c1", "c2", "c3"}, path, x);
  if (auto* b = dynamic_cast<InvertedResidual*>(&m)) return inverted_residual(*b, path, x);
  if (auto* r = dynamic_cast<Residual*>(&m)) return residual(*r, path, x);
  if (auto* se = dynamic_cast<SqueezeExcite*>(&m)) return squeeze_excite(*se, path, x);
  if (auto* c = dynamic_cast<Conv2d*>(&m)) return conv(*c, path, x, nullptr);
  if (auto* bn = dynamic_cast<BatchNorm*>(&m)) return batch_norm(*bn, path, x);
  if (auto* l = dynamic_cast<Linear*>(&m)) return linear(*l, path, x, nullptr);
  if (auto* h = dynamic_cast<CosineHead*>(&m)) return cosine(*h, path, x);
  if (auto* a = dynamic_cast<ActivationLayer*>(&m)) return activation(a->activation(), path, x);
  if (dynamic_cast<Dropout*>(&m) || dynamic_cast<DropPath*>(&m)) return x;  // identities in eval
  if (auto* p = dynamic_cast<MaxPool2d*>(&m)) return pool("MaxPool", p->params(), path, x);
  if (auto* p = dynamic_cast<AvgPool2d*>(&m)) return pool("AveragePool", p->params(), path, x);
  if (dynamic_cast<GlobalAvgPool2d*>(&m)) return global_avg_pool(path, x);
  if (auto* f = dynamic_cast<Flatten*>(&m)) return flatten(*f, path, x);
  std::ostringstream types;
  for (const std::string& t : exportable_module_types()) types << " " << t;
  AG_FAIL("export_onnx: cannot export module '" << (path.empty() ? "<root>" : path) << "' of type "
                                                << m.type_name()
                                                << ": it has no ONNX form; exportable types:" << types.str());
}

std::string Exporter::children_in_order(Module& m, const std::string& path, const std::string& x) {
  std::string h = x;
  for (auto& [name, c] : m.named_children()) h = emit(*c, join(path, name), h);
  return h;
}

// ConvBn::forward: conv, batch norm with its fused activation, then the unfused one ("2").
std::string Exporter::conv_bn(ConvBn& cb, const std::string& path, const std::string& x) {
  const ChannelAffine bn = batch_norm_affine(cb.bn());
  std::string y = conv(cb.conv(), join(path, "0"), x, &bn);
  y = fused(cb.bn().fused_activation(), join(path, "1"), y);
  if (Module* act = find_child(cb, "2")) y = emit(*act, join(path, "2"), y);
  return y;
}

// BasicBlock / Bottleneck::forward: relu(body(x) + short(x)), short the identity if absent.
std::string Exporter::resnet_block(Module& m, const std::vector<std::string>& body, const std::string& path,
                                   const std::string& x) {
  std::string h = x;
  for (const std::string& name : body) h = emit(child(m, path, name), join(path, name), h);
  Module* shortcut = find_child(m, "short");
  const std::string s = shortcut ? emit(*shortcut, join(path, "short"), x) : x;
  const std::string sum = g_.node("Add", {h, s}, path + ".add").output(0);
  return activation(Activation::relu, path + ".relu", sum);
}

// InvertedResidual::forward: body(x), plus x when the block keeps the shape (drop-path is
// the identity in eval).
std::string Exporter::inverted_residual(InvertedResidual& b, const std::string& path, const std::string& x) {
  const std::string y = emit(child(b, path, "body"), join(path, "body"), x);
  return b.has_residual() ? g_.node("Add", {y, x}, path + ".add").output(0) : y;
}

std::string Exporter::residual(Residual& r, const std::string& path, const std::string& x) {
  const std::string y = emit(child(r, path, "body"), join(path, "body"), x);
  Module* shortcut = find_child(r, "shortcut");
  const std::string s = shortcut ? emit(*shortcut, join(path, "shortcut"), x) : x;
  return fused(r.activation(), path, g_.node("Add", {y, s}, path + ".add").output(0));
}

// SqueezeExcite::forward: x * gate(fc2(act(fc1(mean_hw(x))))). The squeeze stays
// [N, C, 1, 1] (GlobalAveragePool) so the 1x1 convs apply as they are; the gate is then
// spread to [N, C, H, W] before the Mul (see spread()).
std::string Exporter::squeeze_excite(SqueezeExcite& se, const std::string& path, const std::string& x) {
  const auto traced = shapes_.inputs.find(&se);
  AG_CHECK(traced != shapes_.inputs.end() && traced->second.size() == 4,
           "export_onnx: '" << path
                            << "' (SqueezeExcite): its input shape is unknown (it must be called "
                               "through call_layer, as the blocks of models/ do)");
  const Shape& in = traced->second;  // [1, C, H, W]
  std::string s = g_.node("GlobalAveragePool", {x}, path + ".squeeze").output(0);
  s = emit(child(se, path, "fc1"), join(path, "fc1"), s);
  s = activation(se.activation(), path + ".act", s);
  s = emit(child(se, path, "fc2"), join(path, "fc2"), s);
  s = activation(se.gate(), path + ".gate", s);
  return g_.node("Mul", {x, spread(s, in[2], in[3], path + ".gate")}, path + ".scale").output(0);
}

// ConvNet::features (apps/lib/classifier.cpp): c1, 2x2 max pool, c2, 2x2 max pool, c3,
// global average pool, then the optional projection Linear + BatchNorm1d (folded); then
// the head "fc" when attached.
std::string Exporter::convnet(train::ConvNet& net, const std::string& path, const std::string& x) {
  const Pool2dParams two_by_two;  // kernel 2, stride 2, no padding
  std::string h = emit(child(net, path, "c1"), join(path, "c1"), x);
  h = pool("MaxPool", two_by_two, path + ".pool1", h);
  h = emit(child(net, path, "c2"), join(path, "c2"), h);
  h = pool("MaxPool", two_by_two, path + ".pool2", h);
  h = emit(child(net, path, "c3"), join(path, "c3"), h);
  h = global_avg_pool(path + ".pool3", h);
  if (Module* proj = find_child(net, "proj")) {
    auto* l = dynamic_cast<Linear*>(proj);
    auto* bn = dynamic_cast<BatchNorm*>(&child(net, path, "proj_bn"));
    AG_CHECK(l && bn, "export_onnx: '" << path << "': ConvNet's proj / proj_bn are not Linear / BatchNorm");
    const ChannelAffine affine = batch_norm_affine(*bn);
    h = linear(*l, join(path, "proj"), h, &affine);
  }
  if (Module* head = find_child(net, "fc")) h = emit(*head, join(path, "fc"), h);
  return h;
}

void check_options(const OnnxExportOptions& o) {
  AG_CHECK(
      o.input_shape.size() == 3 && o.input_shape[0] > 0 && o.input_shape[1] > 0 && o.input_shape[2] > 0,
      "export_onnx: input_shape must be C, H, W (all positive), got " << o.input_shape.size() << " values");
  const size_t c = static_cast<size_t>(o.input_shape[0]);
  AG_CHECK((o.mean.empty() && o.std.empty()) || (o.mean.size() == c && o.std.size() == c),
           "export_onnx: mean and std need one value per channel (" << c << ") or none, got " << o.mean.size()
                                                                    << " and " << o.std.size());
  for (float s : o.std) AG_CHECK(s > 0, "export_onnx: every std must be > 0, got " << s);
}

void set_tensor_type(onnx::ValueInfoProto& v, const std::string& name, const std::vector<int64_t>& dims) {
  v.set_name(name);
  onnx::TypeProto_Tensor* t = v.mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  onnx::TensorShapeProto* shape = t->mutable_shape();
  shape->add_dim()->set_dim_param("batch");
  for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
}

// The shapes of an eval-mode forward of one zero image (which also proves the module
// accepts input_shape). The module's mode is restored afterwards.
SampleShapes trace_sample(Module& net, const std::vector<int64_t>& input_shape) {
  const std::vector<Tensor> params = net.parameters();
  const DType dtype = params.empty() ? DType::f32 : params.front().dtype();
  const Device device = params.empty() ? Device::cpu() : params.front().device();
  const bool was_training = net.is_training();
  net.eval();
  SampleShapes shapes;
  try {
    NoGradGuard no_grad;
    ForwardTrace trace;
    const Shape out =
        net.forward(Tensor::zeros({1, input_shape[0], input_shape[1], input_shape[2]}, dtype, device))
            .shape();
    shapes.output.assign(out.begin() + 1, out.end());
    for (const LayerCall& call : trace.calls()) shapes.inputs.emplace(call.module, call.input);
  } catch (...) {
    net.train(was_training);
    throw;
  }
  net.train(was_training);
  return shapes;
}

}  // namespace

std::vector<std::string> exportable_module_types() {
  return {
      "Classifier",      "ClassifierLoss", "ConvNet",    "ResNet",      "MobileNetV2",      "EfficientNet",
      "Sequential",      "ConvBn",         "BasicBlock", "Bottleneck",  "InvertedResidual", "MBConv",
      "Residual",        "SqueezeExcite",  "Conv2d",     "BatchNorm2d", "BatchNorm1d",      "Linear",
      "CosineHead",      "ReLU",           "ReLU6",      "SiLU",        "Sigmoid",          "Tanh",
      "Hardswish",       "Identity",       "Dropout",    "DropPath",    "MaxPool2d",        "AvgPool2d",
      "GlobalAvgPool2d", "Flatten"};
}

onnx::ModelProto export_onnx(Module& net, const OnnxExportOptions& options) {
  check_options(options);
  const SampleShapes shapes = trace_sample(net, options.input_shape);

  onnx::ModelProto model;
  model.set_ir_version(onnx::IR_VERSION);
  model.set_producer_name("arcgrad");
  model.set_doc_string(options.doc);
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  for (const auto& [key, value] : options.metadata) {
    onnx::StringStringEntryProto* e = model.add_metadata_props();
    e->set_key(key);
    e->set_value(value);
  }
  onnx::GraphProto* graph = model.mutable_graph();
  graph->set_name(net.type_name());
  set_tensor_type(*graph->add_input(), "input", options.input_shape);

  OnnxGraph g(graph);
  g.unique_name("input");
  std::string x = "input";
  Exporter exporter(g, shapes);
  if (!options.mean.empty()) x = exporter.normalise(x, options.mean, options.std);
  const std::string y = exporter.emit(net, "", x);
  AG_CHECK(y != "input", "export_onnx: " << net.type_name() << " is the identity: nothing to export");
  g.rename_value(y, "logits");
  set_tensor_type(*graph->add_output(), "logits", shapes.output);

  try {
    onnx::checker::check_model(model);
    // Also what Python's check_model(full_check=True) adds: strict shape inference, on a
    // copy (it annotates every value), which must agree with the declared output shape.
    onnx::ModelProto inferred = model;
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/true, /*strict_mode=*/1));
  } catch (const std::exception& e) {
    AG_FAIL("export_onnx: the exported graph of " << net.type_name() << " fails onnx::checker: " << e.what());
  }
  return model;
}

OnnxExportOptions run_export_options(const train::TrainedRun& run, bool normalise) {
  OnnxExportOptions o;
  o.input_shape = run.image_shape;
  if (normalise) {
    o.mean = run.stats.mean;
    o.std = run.stats.std;
  }
  o.doc = "arcgrad " + run.config.model + ", " + run.config.loss.describe() +
          (normalise ? ". Input: float32 [batch, C, H, W] pixels scaled to [0, 1]; the graph normalises."
                     : ". Input: float32 [batch, C, H, W] normalised with the metadata's mean and std.") +
          " Output: scores [batch, classes] (argmax = class).";
  o.metadata = {{"class_names", nlohmann::json(run.class_names).dump()},
                {"mean", nlohmann::json(run.stats.mean).dump()},
                {"std", nlohmann::json(run.stats.std).dump()},
                {"input_normalised_in_graph", normalise ? "true" : "false"},
                {"model", run.config.model},
                {"loss", run.config.loss.describe()},
                {"epoch", std::to_string(run.state.epoch)}};
  return o;
}

void save_onnx(const onnx::ModelProto& model, const std::string& path) {
  std::string bytes;
  AG_CHECK(model.SerializeToString(&bytes), "save_onnx: could not serialise the model for " << path);
  serialize::write_file_atomic(path, bytes);
}

}  // namespace ag::interop
