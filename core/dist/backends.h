// The communicators behind core/dist/comm.h (internal to core/dist/): world.cpp picks one
// at init(); each backend lives in its own file, compiled only when its library was found
// (core/dist/dist.cmake).
#pragma once

#include <memory>
#include <string>

#include "core/dist/comm.h"

namespace ag::dist::detail {

// The world of one process (single.cpp): every collective is the identity.
std::unique_ptr<Communicator> make_single_world();

// Checks a tensor handed to a collective: defined, contiguous, f32 or f64. what names the
// call in the error ("allreduce_sum").
void check_collective_tensor(const Tensor& t, const char* what);

// Prints "[rank r/n] arcgrad: why" on stderr (flushed): the line every abort leaves.
void print_abort_reason(int rank, int size, const std::string& why);

#ifdef AG_HAVE_MPI
// mpi.cpp. Whether a launcher (mpirun, srun) started this process: it leaves
// OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK in the environment.
bool launched_by_mpi();
// MPI_Init_thread (MPI_THREAD_FUNNELED: only the thread that called init() makes MPI
// calls) and a communicator over MPI_COMM_WORLD with errors returned, not fatal.
std::unique_ptr<Communicator> mpi_init_world(int* argc, char*** argv);
void mpi_finalize();
#endif

#ifdef AG_HAVE_NCCL
// nccl.cpp: an NCCL communicator over the ranks of bootstrap (the MPI world), for tensors
// on CUDA device `device`; the ncclUniqueId travels from rank 0 through bootstrap.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, int device);
#endif

}  // namespace ag::dist::detail
