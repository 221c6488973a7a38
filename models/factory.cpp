#include "models/factory.h"

#include <sstream>

#include "layers/linear.h"
#include "losses/cosine_head.h"
#include "models/efficientnet.h"
#include "models/mobilenet_v2.h"
#include "models/resnet.h"

namespace ag {

namespace {

const std::vector<std::pair<std::string, int>> kResNets = {
    {"resnet18", 18}, {"resnet34", 34}, {"resnet50", 50}, {"resnet101", 101}, {"resnet152", 152},
    {"resnet20", 20}, {"resnet32", 32}, {"resnet44", 44}, {"resnet56", 56},   {"resnet110", 110}};

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

double parse_number(const std::string& spec, const std::string& knob, const std::string& text) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  AG_CHECK(used > 0 && used == text.size(),
           "model spec '" << spec << "': knob " << knob << " needs a number, got '" << text << "'");
  return v;
}

// ResNets have no dropout or drop path; MobileNetV2 has dropout only.
void check_regularisers(const std::string& name, const ModelOptions& o, bool has_dropout,
                        bool has_drop_path) {
  AG_CHECK(has_dropout || o.dropout <= 0, name << " has no dropout layer (got dropout=" << o.dropout << ")");
  AG_CHECK(has_drop_path || o.drop_path <= 0,
           name << " has no stochastic depth (got drop_path=" << o.drop_path << ")");
}

ModelPtr make_backbone(const std::string& name, const ModelOptions& o) {
  for (const auto& [n, depth] : kResNets)
    if (name == n) {
      check_regularisers(name, o, false, false);
      ResNetConfig c = resnet_config(depth, o.width, o.depth);
      c.in_channels = o.in_channels;
      return std::make_shared<ResNet>(c);
    }
  if (name == "mobilenetv2" || name == "mobilenet_v2") {
    check_regularisers(name, o, true, false);
    MobileNetV2Config c = mobilenet_v2_config(o.width, o.depth);
    c.in_channels = o.in_channels;
    if (o.dropout >= 0) c.dropout = o.dropout;
    return std::make_shared<MobileNetV2>(c);
  }
  if (name == "efficientnet_b0" || name == "efficientnetb0") {
    EfficientNetConfig c = efficientnet_b0_config(o.width, o.depth);
    c.in_channels = o.in_channels;
    if (o.dropout >= 0) c.dropout = o.dropout;
    if (o.drop_path >= 0) c.drop_path = o.drop_path;
    return std::make_shared<EfficientNet>(c);
  }
  AG_FAIL("unknown model '" << name << "'; valid names: " << joined(model_names()));
}

}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& [n, _] : kResNets) names.push_back(n);
  names.push_back("mobilenetv2");
  names.push_back("efficientnet_b0");
  return names;
}

std::vector<std::string> head_names() { return {"linear", "cosine", "none"}; }

std::string parse_model_spec(const std::string& spec, ModelOptions& options) {
  const size_t colon = spec.find(':');
  const std::string name = spec.substr(0, colon);
  AG_CHECK(!name.empty(),
           "model spec '" << spec << "' has no model name; valid names: " << joined(model_names()));
  if (colon == std::string::npos) return name;
  std::stringstream knobs(spec.substr(colon + 1));
  std::string item;
  while (std::getline(knobs, item, ',')) {
    const size_t eq = item.find('=');
    AG_CHECK(eq != std::string::npos, "model spec '" << spec << "': '" << item << "' is not knob=value");
    const std::string knob = item.substr(0, eq);
    const double v = parse_number(spec, knob, item.substr(eq + 1));
    if (knob == "width") {
      options.width = v;
    } else if (knob == "depth") {
      options.depth = v;
    } else if (knob == "dropout") {
      options.dropout = v;
    } else if (knob == "drop_path") {
      options.drop_path = v;
    } else if (knob == "in_channels") {
      AG_CHECK(v >= 1 && v == static_cast<double>(static_cast<int64_t>(v)),
               "model spec '" << spec << "': in_channels must be a positive integer, got " << v);
      options.in_channels = static_cast<int64_t>(v);
    } else {
      AG_FAIL("model spec '" << spec << "': unknown knob '" << knob
                             << "'; valid knobs: width, depth, dropout, drop_path, in_channels");
    }
  }
  return name;
}

ModelPtr make_model(const std::string& spec, int64_t num_classes, const std::string& head,
                    ModelOptions options) {
  const std::string name = parse_model_spec(spec, options);
  AG_CHECK(options.width > 0 && options.depth > 0, "model spec '"
                                                       << spec << "': width and depth must be positive, got "
                                                       << options.width << ", " << options.depth);
  AG_CHECK(head == "linear" || head == "cosine" || head == "none",
           "unknown head '" << head << "'; valid heads: " << joined(head_names()));
  AG_CHECK(head == "none" || num_classes > 0,
           "make_model: num_classes must be positive for a " << head << " head, got " << num_classes);
  ModelPtr model = make_backbone(name, options);
  if (head == "linear") model->set_head(std::make_shared<Linear>(model->feature_dim(), num_classes));
  if (head == "cosine") model->set_head(std::make_shared<CosineHead>(model->feature_dim(), num_classes));
  return model;
}

}  // namespace ag
