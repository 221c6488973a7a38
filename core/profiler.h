// Per-op profiler of training steps (`train --profile`, `bench_gpu --train-model M --profile`).
// Ops, backward nodes, the allocator and the apps' own phases (data-loader wait, optimizer)
// open a Scope; while profiling is on, each scope's time is recorded under its phase
// (forward, backward, other), its name (the op type: "conv2d", "Conv2dBackward", "allocate")
// and the layer it ran in (call_layer, models/trace.h, names the layers; a backward node
// keeps the layer its forward ran in). Scopes nest: a scope's exclusive time is its time
// minus that of the scopes opened inside it, so the exclusive times of all scopes add up to
// the time covered by the outermost ones. When profiling is off a scope costs one relaxed
// atomic load.
//
// Timings are host wall-clock times. On CUDA, kernels run asynchronously: start() with
// synchronize_cuda = true makes every op scope wait for the device at its start and end, so
// each op is charged its own device time (the step itself then runs slower, without overlap).
// Scopes opened on other threads than the one that called start() (data-loader workers)
// are recorded in the phase "background": they overlap the step and are not shares of it.
//
//   profiler::start();
//   for (...) { step(); profiler::mark_step(); }
//   profiler::stop();
//   std::cout << profiler::format(profiler::report());
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace ag::profiler {

enum class Phase : uint8_t { forward, backward, other, background };
const char* phase_name(Phase phase);

namespace detail {
extern std::atomic<bool> g_enabled;
}
// Whether scopes record now (one relaxed load: the check every op pays).
inline bool enabled() { return detail::g_enabled.load(std::memory_order_relaxed); }

struct Options {
  bool synchronize_cuda = false;  // wait for the device around every op scope (see above)
};
// Clears every record and starts recording; the calling thread is the profiled one.
void start(const Options& options = {});
// Stops recording; records stay readable through report(). pause() / resume() leave out a
// stretch (evaluation between epochs) from both the records and the wall time.
void stop();
void pause();
void resume();
// Counts one training step (for per-step figures).
void mark_step();

// Layer names. A layer is identified by an id; -1 is "no layer".
int32_t intern_layer(const std::string& name);  // the id of name (created on first use)
// Names a module (any object address) for LayerScope; replaces an earlier name.
void name_layer(const void* module, const std::string& name);
// The layer the calling thread runs in now (-1 outside any).
int32_t current_layer();

// RAII: the calling thread runs in the layer named for module (or in layer id) while it
// exists. A module without a name is "(unnamed)". Costs one relaxed load when off.
class LayerScope {
 public:
  explicit LayerScope(const void* module) {
    if (enabled()) enter(lookup(module));
  }
  explicit LayerScope(int32_t layer) {
    if (enabled()) enter(layer);
  }
  ~LayerScope();
  LayerScope(const LayerScope&) = delete;
  LayerScope& operator=(const LayerScope&) = delete;

 private:
  static int32_t lookup(const void* module);
  void enter(int32_t layer);
  bool active_ = false;
  int32_t previous_ = -1;
};

// RAII: scopes opened while it exists belong to phase (run_backward sets backward).
class PhaseScope {
 public:
  explicit PhaseScope(Phase phase);
  ~PhaseScope();
  PhaseScope(const PhaseScope&) = delete;
  PhaseScope& operator=(const PhaseScope&) = delete;

 private:
  Phase previous_;
};

// RAII: one timed region. name must outlive the profile (a string literal, or a Node's
// name()). flops: the floating-point operations it performs (0: unknown), for GFLOP/s.
class Scope {
 public:
  explicit Scope(const char* name, double flops = 0) {
    if (enabled()) begin(name, current_layer(), flops, true);
  }
  // In a given layer (a backward node's forward layer); sync: false for host-only scopes
  // that need no device synchronisation.
  Scope(const char* name, int32_t layer, double flops, bool sync) {
    if (enabled()) begin(name, layer, flops, sync);
  }
  // A host-only scope in the current layer (the allocator).
  struct HostOnly {};
  Scope(const char* name, HostOnly) {
    if (enabled()) begin(name, current_layer(), 0, false);
  }
  ~Scope() {
    if (active_) end();
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  bool active() const { return active_; }
  void set_flops(double flops) { flops_ = flops; }

 private:
  void begin(const char* name, int32_t layer, double flops, bool sync);
  void end();
  const char* name_ = nullptr;
  int32_t layer_ = -1;
  Phase phase_ = Phase::forward;
  bool active_ = false, sync_ = false;
  double flops_ = 0;
  int64_t start_ns_ = 0, child_ns_ = 0;
  Scope* parent_ = nullptr;
};

// One aggregated row: every scope of one (phase, name, layer).
struct Entry {
  Phase phase = Phase::forward;
  std::string name, layer;  // layer "" outside any layer
  int64_t count = 0;
  double inclusive_s = 0, exclusive_s = 0;
  double flops = 0;  // summed over the calls; 0 when unknown
};

struct Report {
  double wall_s = 0;  // recorded time (start to stop, less paused stretches)
  int64_t steps = 0;  // mark_step() calls
  bool synchronized = false;
  std::vector<Entry> entries;  // by (phase, name, layer), unsorted
};

// The records so far (also while recording).
Report report();

// A row of a summary table: the entries of one key summed.
struct Row {
  Phase phase = Phase::forward;
  std::string key;  // op name or layer name
  int64_t count = 0;
  double exclusive_s = 0, inclusive_s = 0, flops = 0;
};
// The entries summed by (phase, op name) or by (phase, layer), biggest exclusive time first.
std::vector<Row> by_op(const Report& r);
std::vector<Row> by_layer(const Report& r);
// Exclusive time of the profiled thread (every phase but background); with the wall time
// it gives the unattributed rest (host code outside any scope).
double attributed_seconds(const Report& r);

// The tables as text: a summary, every op type, and the top_layers layers by time; times
// per step, shares of the step, GFLOP/s where the op knows its FLOPs.
std::string format(const Report& r, size_t top_layers = 30);

}  // namespace ag::profiler
