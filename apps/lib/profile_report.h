// The profiler's results (core/profiler.h) as files: profile.txt (the tables `format`
// prints) and profile.json (every row, per step, for scripts), written by `train --profile`
// into the run folder.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/profiler.h"

namespace ag::train {

// {"steps", "wall_ms_per_step", "synchronized", "attributed_share", "by_op": [...],
//  "by_layer": [...], "entries": [...]}; rows carry phase, name/layer, calls, ms per step,
// share of the step and GFLOP/s (when the op counts its FLOPs).
nlohmann::json profile_to_json(const profiler::Report& r);

// Writes dir/profile.txt and dir/profile.json (atomically); returns the text.
std::string write_profile(const std::string& dir, const profiler::Report& r);

}  // namespace ag::train
