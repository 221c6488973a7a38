// The process group of a data-parallel run (docs/distributed.md). One replica of the model
// per process; the processes talk through a Communicator. Without MPI (or when a program
// was not started by mpirun) the world is a single process, rank 0 of 1, and every
// collective is the identity, so code written against this interface runs unchanged.
//
//   ag::dist::init(&argc, &argv);            // first thing in main (MPI_Init_thread)
//   Communicator& w = ag::dist::world();
//   w.allreduce_sum(grad);                   // every rank ends with the sum
//   ag::dist::finalize();                    // before returning from main
//
// Collectives must be called by every rank in the same order (as in MPI). A collective
// that fails, or a peer that died, throws ag::Error on the ranks that notice; the
// launcher's own abort (mpirun kills the job when a rank exits non-zero) covers the rest.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/tensor.h"

namespace ag::dist {

// A handle to a collective started asynchronously (MPI_Iallreduce, or an NCCL call on its
// own stream): wait() returns when the result is in place.
class Pending {
 public:
  virtual ~Pending() = default;
  virtual void wait() = 0;
  // Never blocks: lets the library progress the collective (MPI moves a nonblocking
  // collective forward only inside MPI calls) and says whether it has finished, after
  // which wait() returns at once.
  virtual bool test() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "single", "mpi", "nccl"

  // t: any shape, contiguous, f32 or f64, on the CPU (MPI) or a CUDA device (NCCL, or
  // MPI through the host). In place: t becomes the elementwise sum over ranks.
  virtual void allreduce_sum(Tensor& t) = 0;
  // The same, started now and finished by the returned handle's wait(); t must stay
  // alive and untouched until then.
  virtual std::unique_ptr<Pending> allreduce_sum_async(Tensor& t) = 0;
  // Host values (metric counts and sums): in place, summed over ranks.
  virtual void allreduce_sum(double* values, int64_t n) = 0;
  // t (contiguous) becomes root's t on every rank.
  virtual void broadcast(Tensor& t, int root) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job now with exit status code, after printing why (rank-tagged)
  // on stderr. Never returns.
  [[noreturn]] virtual void abort(int code, const std::string& why) = 0;
};

// Starts MPI when arcgrad was built with it (AG_USE_MPI) and the program runs under a
// launcher (mpirun sets OMPI_COMM_WORLD_SIZE / PMI_SIZE); otherwise does nothing.
// Idempotent. Call before any thread is started.
void init(int* argc, char*** argv);
void finalize();
bool built_with_mpi();
bool built_with_nccl();
// True when init() found a launcher with more than one rank.
bool is_distributed();
// The process group: MPI after init() under a launcher, else the single-process world.
Communicator& world();
// The communicator for tensors on device: for a CUDA device in a build with NCCL, an NCCL
// communicator over the same ranks (created on the first call, which is a collective:
// every rank must make it, each with its own device); world() otherwise. finalize()
// destroys it.
Communicator& world_for(Device device);

}  // namespace ag::dist
