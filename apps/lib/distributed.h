// What the apps add on top of core/dist for data-parallel training (docs/distributed.md):
// making the replicas identical, averaging gradients, picking each rank's device, and
// telling a user whose build lacks MPI how to get it.
#pragma once

#include <string>

#include "core/dist/comm.h"
#include "core/dtype.h"
#include "layers/module.h"

namespace ag::train {

// The number of processes the launcher (mpirun, srun, Intel MPI) started, from its
// environment; 1 when there is none.
int launcher_world_size();
// Throws a UsageError saying how to build with MPI when this program was started as one
// of several processes (launcher_world_size() > 1) but arcgrad was built without MPI, so
// each process would silently train alone.
void require_mpi_if_launched();

// Every parameter and floating-point buffer of module becomes rank root's (as DDP does
// when it wraps a model): replicas start identical whatever each process initialised.
void broadcast_module(Module& module, dist::Communicator& comm, int root = 0);
// The floating-point buffers only (batch-norm running statistics, which each rank updates
// from its own shard): before an evaluation, so that every rank scores with rank root's.
void broadcast_buffers(Module& module, dist::Communicator& comm, int root = 0);

// The device of this rank for --device `requested`: plain "cuda" becomes cuda:<local rank
// modulo the visible devices> when several ranks run (one rank per GPU); "cuda:N" and "cpu"
// are kept.
Device rank_device(const std::string& requested, const dist::Communicator& comm);

}  // namespace ag::train
