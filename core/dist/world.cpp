// The process-wide world of core/dist/comm.h: the single-process world until init() finds a
// launcher, the MPI world after, and the per-device NCCL communicators made on demand.
#include <map>

#include "core/dist/backends.h"

namespace ag::dist {

namespace {

struct WorldState {
  std::unique_ptr<Communicator> world;
  std::map<int, std::unique_ptr<Communicator>> nccl;  // by CUDA device index
  bool mpi_running = false;
};

WorldState& state() {
  static WorldState s;
  return s;
}

}  // namespace

void init(int* argc, char*** argv) {
  WorldState& s = state();
  if (s.mpi_running) return;
#ifdef AG_HAVE_MPI
  if (detail::launched_by_mpi()) {
    s.world = detail::mpi_init_world(argc, argv);
    s.mpi_running = true;
    return;
  }
#else
  (void)argc;
  (void)argv;
#endif
}

void finalize() {
  WorldState& s = state();
  s.nccl.clear();  // NCCL communicators go before the MPI world they were bootstrapped from
  if (!s.mpi_running) return;
  s.world.reset();
#ifdef AG_HAVE_MPI
  detail::mpi_finalize();
#endif
  s.mpi_running = false;
}

bool built_with_mpi() {
#ifdef AG_HAVE_MPI
  return true;
#else
  return false;
#endif
}

bool built_with_nccl() {
#ifdef AG_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

Communicator& world() {
  WorldState& s = state();
  if (!s.world) s.world = detail::make_single_world();
  return *s.world;
}

bool is_distributed() { return world().size() > 1; }

Communicator& world_for(Device device) {
#ifdef AG_HAVE_NCCL
  WorldState& s = state();
  if (device.is_cuda() && s.mpi_running) {
    auto it = s.nccl.find(device.index);
    if (it == s.nccl.end())
      it = s.nccl.emplace(device.index, detail::make_nccl_communicator(world(), device.index)).first;
    return *it->second;
  }
#else
  (void)device;
#endif
  return world();
}

}  // namespace ag::dist
