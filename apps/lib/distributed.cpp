#include "apps/lib/distributed.h"

#include <cstdlib>

#include "apps/lib/flags.h"
#include "core/cuda_api.h"

namespace ag::train {

namespace {

// The first of the variables that is set, as an integer; fallback when none is.
int env_int(std::initializer_list<const char*> names, int fallback) {
  for (const char* name : names)
    if (const char* v = std::getenv(name); v != nullptr && *v != '\0') return std::atoi(v);
  return fallback;
}

}  // namespace

int launcher_world_size() {
  return env_int({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS"}, 1);
}

void require_mpi_if_launched() {
  const int n = launcher_world_size();
  if (n <= 1 || dist::built_with_mpi()) return;
  throw UsageError("started as one of " + std::to_string(n) +
                   " processes (by mpirun or another launcher), but arcgrad was built without MPI, so each "
                   "process would train alone. "
                   "Install Open MPI (Debian: apt install libopenmpi-dev openmpi-bin) and rebuild with "
                   "cmake -DAG_USE_MPI=ON (see docs/distributed.md)");
}

void broadcast_module(Module& module, dist::Communicator& comm, int root) {
  if (comm.size() == 1) return;
  for (auto& [name, p] : module.named_parameters()) comm.broadcast(p, root);
  broadcast_buffers(module, comm, root);
}

void broadcast_buffers(Module& module, dist::Communicator& comm, int root) {
  if (comm.size() == 1) return;
  for (auto& [name, b] : module.named_buffers())
    if (b.dtype() == DType::f32 || b.dtype() == DType::f64) comm.broadcast(b, root);
}

Device rank_device(const std::string& requested, const dist::Communicator& comm) {
  if (comm.size() == 1 || requested != "cuda") return Device::parse(requested);
  const int local_rank =
      env_int({"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"}, comm.rank());
  const int devices = cuda::device_count();
  return devices > 0 ? Device::cuda(local_rank % devices) : Device::parse(requested);
}

}  // namespace ag::train
