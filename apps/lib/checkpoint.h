// Checkpoints of a training run, in its folder:
//   checkpoint.safetensors  the model's parameters and buffers under their dotted names
//                           (so torch's load_state_dict takes them after dropping the
//                           "optim/" entries), the optimizer state under "optim/<name>",
//                           and in its __metadata__ "arcgrad.checkpoint" = the JSON of
//                           TrainState below. One file, written atomically, so a crash or a
//                           full disk mid-save leaves the previous checkpoint whole.
//   state.json              the same TrainState, pretty-printed for people and scripts
//                           (also atomic; the loader reads only the safetensors file).
// Resuming restores the weights, the optimizer state, epoch/step and every generator's
// state, so on the CPU a resumed run continues with exactly the numbers of an
// uninterrupted one.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "core/random.h"

namespace ag {
class Module;
namespace optim {
class Optimizer;
}
}  // namespace ag

namespace ag::train {

struct TrainState {
  int64_t epoch = 0;                                     // epochs completed
  int64_t step = 0;                                      // optimizer steps completed
  Generator::State global_rng{};                         // ag::global_generator()
  std::map<std::string, Generator::State> generators{};  // e.g. "train_loader"
  nlohmann::json config = nlohmann::json::object();      // the run's configuration
  nlohmann::json extra = nlohmann::json::object();       // anything else (best accuracy, ...)
};

inline constexpr const char* kCheckpointFile = "checkpoint.safetensors";
inline constexpr const char* kStateFile = "state.json";

// Writes both files into dir (created if needed). optimizer may be null.
void save_checkpoint(const std::string& dir, const Module& model, const optim::Optimizer* optimizer,
                     const TrainState& state);

// Restores model and optimizer (may be null: its entries are then ignored) from dir's
// checkpoint and returns the TrainState; the caller applies the generator states. A
// missing, truncated or foreign file, or one that does not fit the model, is an error
// naming the file and what is wrong.
TrainState load_checkpoint(const std::string& dir, Module& model, optim::Optimizer* optimizer);

bool checkpoint_exists(const std::string& dir);

// The TrainState of dir's checkpoint without restoring anything (e.g. its config, to build
// the model before load_checkpoint). The same checks and errors as load_checkpoint for a
// missing, truncated or foreign file.
TrainState read_checkpoint_state(const std::string& dir);

// Generator state <-> JSON (four 64-bit words as hex strings, exact in every JSON reader).
nlohmann::json rng_to_json(const Generator::State& s);
Generator::State rng_from_json(const nlohmann::json& j, const std::string& what);

}  // namespace ag::train
