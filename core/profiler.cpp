#include "core/profiler.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>
#include <unordered_map>

#include "core/cuda_api.h"

namespace ag::profiler {

namespace detail {
std::atomic<bool> g_enabled{false};
}

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Records are keyed by the name's address (cheap while recording); report() merges equal
// names that live at different addresses.
struct Key {
  Phase phase;
  const char* name;
  int32_t layer;
  bool operator<(const Key& o) const {
    return std::tie(phase, name, layer) < std::tie(o.phase, o.name, o.layer);
  }
};

struct Stats {
  int64_t count = 0, inclusive_ns = 0, exclusive_ns = 0;
  double flops = 0;
};

struct State {
  std::mutex mutex;  // guards everything below
  std::map<Key, Stats> records;
  std::vector<std::string> layer_names;
  std::unordered_map<std::string, int32_t> layer_ids;
  std::unordered_map<const void*, int32_t> module_layers;
  bool synchronize = false;
  bool recording = false;
  int64_t wall_ns = 0, stretch_start_ns = 0;
  int64_t steps = 0;
};

State& state() {
  static State s;
  return s;
}

std::atomic<std::thread::id> g_profiled_thread{};
std::atomic<bool> g_synchronize{false};

thread_local int32_t t_layer = -1;
thread_local Phase t_phase = Phase::forward;
thread_local Scope* t_innermost = nullptr;

int32_t intern_locked(State& s, const std::string& name) {
  auto it = s.layer_ids.find(name);
  if (it != s.layer_ids.end()) return it->second;
  const auto id = static_cast<int32_t>(s.layer_names.size());
  s.layer_names.push_back(name);
  s.layer_ids.emplace(name, id);
  return id;
}

// Starts or ends a recorded stretch of wall time; caller holds the mutex.
void set_recording(State& s, bool on) {
  if (on == s.recording) return;
  const int64_t t = now_ns();
  if (on)
    s.stretch_start_ns = t;
  else
    s.wall_ns += t - s.stretch_start_ns;
  s.recording = on;
  detail::g_enabled.store(on, std::memory_order_relaxed);
}

}  // namespace

const char* phase_name(Phase phase) {
  switch (phase) {
    case Phase::forward:
      return "forward";
    case Phase::backward:
      return "backward";
    case Phase::other:
      return "other";
    case Phase::background:
      return "background";
  }
  return "?";
}

void start(const Options& options) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.records.clear();
  s.wall_ns = 0;
  s.steps = 0;
  s.synchronize = options.synchronize_cuda;
  g_synchronize.store(options.synchronize_cuda, std::memory_order_relaxed);
  g_profiled_thread.store(std::this_thread::get_id());
  s.recording = false;
  set_recording(s, true);
}

void stop() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  set_recording(s, false);
}

void pause() { stop(); }

void resume() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  set_recording(s, true);
}

void mark_step() {
  if (!enabled()) return;
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  ++s.steps;
}

int32_t intern_layer(const std::string& name) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return intern_locked(s, name);
}

void name_layer(const void* module, const std::string& name) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.module_layers[module] = intern_locked(s, name);
}

int32_t current_layer() { return t_layer; }

int32_t LayerScope::lookup(const void* module) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  auto it = s.module_layers.find(module);
  return it != s.module_layers.end() ? it->second : intern_locked(s, "(unnamed)");
}

void LayerScope::enter(int32_t layer) {
  previous_ = t_layer;
  t_layer = layer;
  active_ = true;
}

LayerScope::~LayerScope() {
  if (active_) t_layer = previous_;
}

PhaseScope::PhaseScope(Phase phase) : previous_(t_phase) { t_phase = phase; }
PhaseScope::~PhaseScope() { t_phase = previous_; }

void Scope::begin(const char* name, int32_t layer, double flops, bool sync) {
  name_ = name;
  layer_ = layer;
  flops_ = flops;
  const bool profiled_thread =
      g_profiled_thread.load(std::memory_order_relaxed) == std::this_thread::get_id();
  phase_ = profiled_thread ? t_phase : Phase::background;
  sync_ = sync && profiled_thread && g_synchronize.load(std::memory_order_relaxed);
  if (sync_) cuda::synchronize();
  parent_ = t_innermost;
  t_innermost = this;
  active_ = true;
  start_ns_ = now_ns();
}

void Scope::end() {
  if (sync_) cuda::synchronize();
  const int64_t elapsed = now_ns() - start_ns_;
  t_innermost = parent_;
  if (parent_) parent_->child_ns_ += elapsed;
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  Stats& st = s.records[Key{phase_, name_, layer_}];
  st.count += 1;
  st.inclusive_ns += elapsed;
  st.exclusive_ns += elapsed - child_ns_;
  st.flops += flops_;
}

Report report() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  Report r;
  r.wall_s = 1e-9 * static_cast<double>(s.wall_ns + (s.recording ? now_ns() - s.stretch_start_ns : 0));
  r.steps = s.steps;
  r.synchronized = s.synchronize;
  for (const auto& [key, st] : s.records) {
    Entry e;
    e.phase = key.phase;
    e.name = key.name;
    e.layer = key.layer >= 0 ? s.layer_names[static_cast<size_t>(key.layer)] : "";
    e.count = st.count;
    e.inclusive_s = 1e-9 * static_cast<double>(st.inclusive_ns);
    e.exclusive_s = 1e-9 * static_cast<double>(st.exclusive_ns);
    e.flops = st.flops;
    r.entries.push_back(std::move(e));
  }
  return r;
}

namespace {

std::vector<Row> group(const Report& r, bool by_layer_name) {
  std::map<std::pair<Phase, std::string>, Row> rows;
  for (const Entry& e : r.entries) {
    const std::string& key = by_layer_name ? e.layer : e.name;
    Row& row = rows[{e.phase, key}];
    row.phase = e.phase;
    row.key = key;
    row.count += e.count;
    row.exclusive_s += e.exclusive_s;
    row.inclusive_s += e.inclusive_s;
    row.flops += e.flops;
  }
  std::vector<Row> out;
  for (auto& [_, row] : rows) out.push_back(row);
  std::stable_sort(out.begin(), out.end(),
                   [](const Row& a, const Row& b) { return a.exclusive_s > b.exclusive_s; });
  return out;
}

std::string line(const char* fmt, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, fmt, args...);
  return buf;
}

// GFLOP/s of the row's exclusive time, blank when the ops do not count their FLOPs.
std::string gflops_text(const Row& row) {
  return row.flops > 0 && row.exclusive_s > 0 ? line("%9.1f", 1e-9 * row.flops / row.exclusive_s)
                                              : std::string(9, ' ');
}

}  // namespace

std::vector<Row> by_op(const Report& r) { return group(r, false); }
std::vector<Row> by_layer(const Report& r) { return group(r, true); }

double attributed_seconds(const Report& r) {
  double t = 0;
  for (const Entry& e : r.entries)
    if (e.phase != Phase::background) t += e.exclusive_s;
  return t;
}

std::string format(const Report& r, size_t top_layers) {
  const double steps = static_cast<double>(std::max<int64_t>(r.steps, 1));
  const double step_s = r.wall_s / steps;
  const double attributed = attributed_seconds(r);
  std::string out;
  out +=
      line("profile: %lld steps, %.2f ms per step (wall), %.1f%% of it inside profiled scopes\n",
           static_cast<long long>(r.steps), 1e3 * step_s, r.wall_s > 0 ? 100 * attributed / r.wall_s : 0.0);
  out += r.synchronized ? "timings: host clock, the CUDA device synchronised around every op\n"
                        : "timings: host clock (exclusive time: nested scopes, e.g. allocate, subtracted)\n";
  const auto share = [&](double s) { return r.wall_s > 0 ? 100 * s / r.wall_s : 0.0; };
  out += "\nper op type (ms per step, exclusive)\n";
  out += line("%-10s %-40s %9s %7s %10s %9s\n", "phase", "op", "ms/step", "share", "calls/step", "GFLOP/s");
  std::vector<Row> background;
  for (const Row& row : by_op(r)) {
    if (row.phase == Phase::background) {
      background.push_back(row);
      continue;
    }
    const std::string gflops = gflops_text(row);
    out += line("%-10s %-40s %9.3f %6.1f%% %10.1f %s\n", phase_name(row.phase), row.key.c_str(),
                1e3 * row.exclusive_s / steps, share(row.exclusive_s), static_cast<double>(row.count) / steps,
                gflops.c_str());
  }
  const double rest = std::max(0.0, r.wall_s - attributed);
  out += line("%-10s %-40s %9.3f %6.1f%%\n", "-", "(outside any scope)", 1e3 * rest / steps, share(rest));
  out += line("\nper layer (ms per step, exclusive, top %zu)\n", top_layers);
  out += line("%-10s %-50s %9s %7s %9s\n", "phase", "layer", "ms/step", "share", "GFLOP/s");
  size_t shown = 0;
  for (const Row& row : by_layer(r)) {
    if (row.phase == Phase::background || shown++ >= top_layers) continue;
    out += line("%-10s %-50s %9.3f %6.1f%% %s\n", phase_name(row.phase),
                row.key.empty() ? "(no layer)" : row.key.c_str(), 1e3 * row.exclusive_s / steps,
                share(row.exclusive_s), gflops_text(row).c_str());
  }
  if (!background.empty()) {
    out += "\nother threads (data-loader workers; overlaps the step, not a share of it)\n";
    for (const Row& row : background)
      out += line("%-10s %-40s %9.3f ms/step %10.1f calls/step\n", "background", row.key.c_str(),
                  1e3 * row.exclusive_s / steps, static_cast<double>(row.count) / steps);
  }
  return out;
}

}  // namespace ag::profiler
