#include "apps/lib/profile_report.h"

#include <algorithm>
#include <filesystem>

#include "core/serialize/atomic_file.h"

namespace ag::train {

namespace {

nlohmann::json row_json(const profiler::Row& row, const char* key_name, double steps, double wall_s) {
  nlohmann::json j = {{"phase", profiler::phase_name(row.phase)},
                      {key_name, row.key},
                      {"calls_per_step", static_cast<double>(row.count) / steps},
                      {"ms_per_step", 1e3 * row.exclusive_s / steps},
                      {"inclusive_ms_per_step", 1e3 * row.inclusive_s / steps},
                      {"share", wall_s > 0 ? row.exclusive_s / wall_s : 0.0}};
  if (row.flops > 0 && row.exclusive_s > 0) j["gflops"] = 1e-9 * row.flops / row.exclusive_s;
  return j;
}

}  // namespace

nlohmann::json profile_to_json(const profiler::Report& r) {
  const double steps = static_cast<double>(std::max<int64_t>(r.steps, 1));
  nlohmann::json j = {{"steps", r.steps},
                      {"wall_ms_per_step", 1e3 * r.wall_s / steps},
                      {"synchronized", r.synchronized},
                      {"attributed_share", r.wall_s > 0 ? profiler::attributed_seconds(r) / r.wall_s : 0.0},
                      {"by_op", nlohmann::json::array()},
                      {"by_layer", nlohmann::json::array()},
                      {"entries", nlohmann::json::array()}};
  for (const profiler::Row& row : profiler::by_op(r))
    j["by_op"].push_back(row_json(row, "op", steps, r.wall_s));
  for (const profiler::Row& row : profiler::by_layer(r))
    j["by_layer"].push_back(row_json(row, "layer", steps, r.wall_s));
  for (const profiler::Entry& e : r.entries)
    j["entries"].push_back({{"phase", profiler::phase_name(e.phase)},
                            {"op", e.name},
                            {"layer", e.layer},
                            {"calls", e.count},
                            {"exclusive_s", e.exclusive_s},
                            {"inclusive_s", e.inclusive_s},
                            {"flops", e.flops}});
  return j;
}

std::string write_profile(const std::string& dir, const profiler::Report& r) {
  namespace fs = std::filesystem;
  const std::string text = profiler::format(r);
  serialize::write_file_atomic((fs::path(dir) / "profile.txt").string(), text);
  serialize::write_file_atomic((fs::path(dir) / "profile.json").string(), profile_to_json(r).dump(2) + "\n");
  return text;
}

}  // namespace ag::train
