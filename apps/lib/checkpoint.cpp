// Checkpoint save/load on top of safetensors; see checkpoint.h for the layout.
#include "apps/lib/checkpoint.h"

#include <cstdio>
#include <filesystem>
#include <regex>

#include "core/optim/optimizer.h"
#include "core/serialize/atomic_file.h"
#include "core/serialize/json_number.h"
#include "layers/module_io.h"

namespace ag::train {

namespace {
constexpr const char* kMetaKey = "arcgrad.checkpoint";
constexpr const char* kOptimPrefix = "optim/";
constexpr int kFormatVersion = 1;

// "core/x.cpp:12: message" -> "message", to re-throw an inner error with the file named.
std::string without_location(const std::string& message) {
  static const std::regex location(R"(^[^ :]+:[0-9]+: )");
  return std::regex_replace(message, location, "", std::regex_constants::format_first_only);
}

nlohmann::json state_to_json(const TrainState& s, const std::string& optimizer_name) {
  nlohmann::json gens = nlohmann::json::object();
  for (const auto& [name, g] : s.generators) gens[name] = rng_to_json(g);
  return {{"format", "arcgrad-checkpoint"},
          {"version", kFormatVersion},
          {"epoch", s.epoch},
          {"step", s.step},
          {"optimizer", optimizer_name},
          {"global_rng", rng_to_json(s.global_rng)},
          {"generators", gens},
          {"config", s.config},
          {"extra", s.extra}};
}

// Every field checked; what names the file for the errors.
TrainState state_from_json(const nlohmann::json& j, const std::string& what) {
  // Compared as JSON values: a marker or version of the wrong type is a mismatch like any
  // other, not a JSON type error (found by tests/fuzz/).
  auto field = [&](const char* key) { return j.is_object() && j.contains(key) ? j[key] : nlohmann::json(); };
  AG_CHECK(field("format") == "arcgrad-checkpoint",
           what << " is not an arcgrad checkpoint (no arcgrad-checkpoint marker)");
  AG_CHECK(field("version") == kFormatVersion, what << ": checkpoint format version "
                                                    << field("version").dump() << ", this build reads "
                                                    << kFormatVersion);
  TrainState s;
  s.epoch = serialize::json_int64_field(j, "epoch", what);
  s.step = serialize::json_int64_field(j, "step", what);
  try {
    s.config = j.at("config");
    s.extra = j.at("extra");
  } catch (const nlohmann::json::exception& e) {
    AG_FAIL(what << ": a field of the checkpoint state is missing or malformed (" << e.what() << ")");
  }
  AG_CHECK(s.epoch >= 0 && s.step >= 0, what << ": negative epoch or step");
  s.global_rng =
      rng_from_json(j.contains("global_rng") ? j["global_rng"] : nlohmann::json(), what + " global_rng");
  AG_CHECK(j.contains("generators") && j["generators"].is_object(), what << ": no generators object");
  for (const auto& [name, g] : j["generators"].items())
    s.generators[name] = rng_from_json(g, what + " generator " + name);
  return s;
}
}  // namespace

nlohmann::json rng_to_json(const Generator::State& s) {
  nlohmann::json words = nlohmann::json::array();
  for (uint64_t w : s.s) {
    char buf[19];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(w));
    words.push_back(buf);
  }
  return words;
}

Generator::State rng_from_json(const nlohmann::json& j, const std::string& what) {
  AG_CHECK(j.is_array() && j.size() == 4, what << ": a generator state must be 4 hex words");
  Generator::State s{};
  for (size_t i = 0; i < 4; ++i) {
    AG_CHECK(j[i].is_string() && j[i].get<std::string>().size() == 16,
             what << ": word " << i << " is not 16 hex digits");
    const std::string hex = j[i].get<std::string>();
    size_t used = 0;
    try {
      s.s[i] = std::stoull(hex, &used, 16);
    } catch (const std::exception&) {
      used = 0;
    }
    AG_CHECK(used == 16, what << ": word " << i << " ('" << hex << "') is not 16 hex digits");
  }
  return s;
}

bool checkpoint_exists(const std::string& dir) {
  return std::filesystem::exists(std::filesystem::path(dir) / kCheckpointFile);
}

void save_checkpoint(const std::string& dir, const Module& model, const optim::Optimizer* optimizer,
                     const TrainState& state) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  AG_CHECK(std::filesystem::is_directory(dir),
           "cannot create the checkpoint folder '" << dir << "': " << ec.message());
  serialize::NamedTensors tensors = serialize::module_state(model);
  for (const auto& [name, _] : tensors)
    AG_CHECK(name.rfind(kOptimPrefix, 0) != 0, "save_checkpoint: model tensor '"
                                                   << name << "' clashes with the '" << kOptimPrefix
                                                   << "' prefix");
  if (optimizer)
    for (const auto& [name, t] : optimizer->state()) tensors.emplace_back(kOptimPrefix + name, t);
  const nlohmann::json meta = state_to_json(state, optimizer ? optimizer->name() : "");
  const std::filesystem::path base(dir);
  serialize::save_safetensors((base / kCheckpointFile).string(), tensors, {{kMetaKey, meta.dump()}});
  serialize::write_file_atomic((base / kStateFile).string(), meta.dump(2) + "\n");
}

namespace {
// A checkpoint file read and checked: its tensors and its arcgrad metadata.
struct OpenedCheckpoint {
  serialize::SafetensorsFile file;
  nlohmann::json meta;
  std::string what;  // "'<path>'", for messages
};

OpenedCheckpoint open_checkpoint(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / kCheckpointFile).string();
  AG_CHECK(std::filesystem::exists(path), "no checkpoint in '" << dir << "' (" << path << " does not exist)");
  OpenedCheckpoint c{serialize::load_safetensors(path), {}, "'" + path + "'"};
  auto meta = c.file.metadata.find(kMetaKey);
  AG_CHECK(meta != c.file.metadata.end(), c.what
                                              << " is a safetensors file but not an arcgrad checkpoint (no '"
                                              << kMetaKey << "' metadata)");
  try {
    c.meta = nlohmann::json::parse(meta->second);
  } catch (const nlohmann::json::exception& e) {
    AG_FAIL(c.what << ": the checkpoint metadata is not valid JSON (" << e.what() << ")");
  }
  return c;
}
}  // namespace

TrainState read_checkpoint_state(const std::string& dir) {
  const OpenedCheckpoint c = open_checkpoint(dir);
  return state_from_json(c.meta, c.what);
}

TrainState load_checkpoint(const std::string& dir, Module& model, optim::Optimizer* optimizer) {
  OpenedCheckpoint c = open_checkpoint(dir);
  const std::string& what = c.what;
  TrainState state = state_from_json(c.meta, what);
  serialize::NamedTensors weights, optim_state;
  for (auto& [name, t] : c.file.tensors) {
    if (name.rfind(kOptimPrefix, 0) == 0) {
      optim_state.emplace_back(name.substr(std::string(kOptimPrefix).size()), t);
    } else {
      weights.emplace_back(name, t);
    }
  }
  serialize::load_module_state(model, weights, what);
  if (optimizer) {
    const nlohmann::json& named = c.meta.contains("optimizer") ? c.meta["optimizer"] : nlohmann::json();
    const std::string saved = named.is_string() ? named.get<std::string>() : "";
    AG_CHECK(saved == optimizer->name(), what << " holds " << (saved.empty() ? "no" : "'" + saved + "'")
                                              << " optimizer state, but the run uses '" << optimizer->name()
                                              << "'");
    try {
      optimizer->load_state(optim_state);
    } catch (const Error& e) {
      AG_FAIL(what << ": " << without_location(e.what()));
    }
  }
  return state;
}

}  // namespace ag::train
