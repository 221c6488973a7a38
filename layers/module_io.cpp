// A Module's state to and from safetensors, by dotted names.
#include "layers/module_io.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

namespace ag::serialize {

NamedTensors module_state(const Module& module) {
  NamedTensors out = module.named_parameters();
  for (auto& entry : module.named_buffers()) out.push_back(entry);
  return out;
}

namespace {
// "a, b, c and 4 more"
std::string name_list(const std::vector<std::string>& names) {
  std::ostringstream os;
  const size_t shown = std::min<size_t>(names.size(), 8);
  for (size_t i = 0; i < shown; ++i) os << (i ? ", " : "") << names[i];
  if (names.size() > shown) os << " and " << names.size() - shown << " more";
  return os.str();
}
}  // namespace

void load_module_state(Module& module, const NamedTensors& tensors, const std::string& source) {
  std::map<std::string, const Tensor*> given;
  for (const auto& [name, t] : tensors) given[name] = &t;
  std::vector<std::string> missing, mismatched, unexpected;
  const NamedTensors targets = module_state(module);
  std::set<std::string> wanted;
  for (const auto& [name, t] : targets) {
    wanted.insert(name);
    auto it = given.find(name);
    if (it == given.end()) {
      missing.push_back(name);
    } else if (it->second->shape() != t.shape()) {
      mismatched.push_back(name + " (file " + shape_str(it->second->shape()) + ", model " +
                           shape_str(t.shape()) + ")");
    }
  }
  for (const auto& [name, _] : tensors)
    if (!wanted.count(name)) unexpected.push_back(name);
  if (!missing.empty() || !mismatched.empty() || !unexpected.empty()) {
    std::ostringstream os;
    os << source << " does not match the model:";
    if (!missing.empty()) os << " missing " << name_list(missing) << ";";
    if (!unexpected.empty()) os << " unexpected " << name_list(unexpected) << ";";
    if (!mismatched.empty()) os << " shape mismatch " << name_list(mismatched) << ";";
    AG_FAIL(os.str());
  }
  for (const auto& [name, t] : targets) {
    Tensor dst = t;
    dst.copy_(*given[name]);
  }
}

void save_module(const std::string& path, const Module& module, const Metadata& metadata) {
  save_safetensors(path, module_state(module), metadata);
}

void load_module(const std::string& path, Module& module) {
  load_module_state(module, load_safetensors(path).tensors, "'" + path + "'");
}

}  // namespace ag::serialize
