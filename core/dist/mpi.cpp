// The MPI communicator (built with AG_USE_MPI). One process per rank, MPI_COMM_WORLD
// duplicated so arcgrad's collectives never match a user's own. MPI runs at
// MPI_THREAD_FUNNELED: every call comes from the thread that called init() (the training
// loop's thread; the compute threads of OpenMP and the loader's workers never talk MPI).
// Errors are returned (MPI_ERRORS_RETURN) and become ag::Error with MPI's own text.
// CUDA tensors go through a host copy here; world_for(cuda) gives the NCCL path instead.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/dist/backends.h"

namespace ag::dist::detail {

namespace {

bool g_we_initialised = false;  // false when the program had started MPI itself

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, static_cast<size_t>(length));
}

int world_rank() {
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

void check_mpi(int code, const char* call) {
  AG_CHECK(code == MPI_SUCCESS, "[rank " << world_rank() << "] " << call
                                         << " failed: " << mpi_error_text(code)
                                         << " (a peer rank may have died; the job cannot continue)");
}

MPI_Datatype mpi_type(DType dtype) { return dtype == DType::f64 ? MPI_DOUBLE : MPI_FLOAT; }

// MPI counts are int: a larger buffer goes in chunks of at most this many elements.
constexpr int64_t kMaxChunk = int64_t{1} << 30;

// Visits [offset, count) chunks of n elements.
template <typename F>
void for_each_chunk(int64_t n, F&& f) {
  for (int64_t offset = 0; offset < n; offset += kMaxChunk)
    f(offset, static_cast<int>(std::min(kMaxChunk, n - offset)));
}

// The host tensor an MPI call works on: t itself on the CPU, a host copy of a CUDA tensor.
Tensor host_view(const Tensor& t) { return t.device().is_cpu() ? t : t.to(Device::cpu()); }

// A nonblocking allreduce: its requests, the host buffer they write, and (for a CUDA
// tensor) where the result goes back once they complete.
class MpiPending : public Pending {
 public:
  MpiPending(std::vector<MPI_Request> requests, Tensor host, Tensor device_target)
      : requests_(std::move(requests)), host_(std::move(host)), device_target_(std::move(device_target)) {}
  ~MpiPending() override {
    // The buffer must outlive the requests: an unwaited handle still waits (errors
    // ignored here; whoever needed the result called wait()).
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!done_ && !finalized)
      MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE);
  }
  void wait() override {
    if (done_) return;
    check_mpi(MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE),
              "MPI_Waitall (allreduce)");
    complete();
  }
  bool test() override {
    if (done_) return true;
    int flag = 0;
    check_mpi(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &flag, MPI_STATUSES_IGNORE),
              "MPI_Testall (allreduce)");
    if (flag) complete();
    return done_;
  }

 private:
  void complete() {
    done_ = true;
    if (device_target_.defined()) device_target_.copy_(host_);
  }
  std::vector<MPI_Request> requests_;
  Tensor host_, device_target_;
  bool done_ = false;
};

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator() {
    check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    check_mpi(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  void allreduce_sum(Tensor& t) override {
    check_collective_tensor(t, "allreduce_sum");
    Tensor host = host_view(t);
    for_each_chunk(host.numel(), [&](int64_t offset, int count) {
      check_mpi(
          MPI_Allreduce(MPI_IN_PLACE, element(host, offset), count, mpi_type(t.dtype()), MPI_SUM, comm_),
          "MPI_Allreduce");
    });
    if (!t.device().is_cpu()) t.copy_(host);
  }

  std::unique_ptr<Pending> allreduce_sum_async(Tensor& t) override {
    check_collective_tensor(t, "allreduce_sum_async");
    Tensor host = host_view(t);
    std::vector<MPI_Request> requests;
    for_each_chunk(host.numel(), [&](int64_t offset, int count) {
      MPI_Request request;
      check_mpi(MPI_Iallreduce(MPI_IN_PLACE, element(host, offset), count, mpi_type(t.dtype()), MPI_SUM,
                               comm_, &request),
                "MPI_Iallreduce");
      requests.push_back(request);
    });
    return std::make_unique<MpiPending>(std::move(requests), host, t.device().is_cpu() ? Tensor() : t);
  }

  void allreduce_sum(double* values, int64_t n) override {
    AG_CHECK(n >= 0 && (values || n == 0), "allreduce_sum: needs n >= 0 host values, got n = " << n);
    for_each_chunk(n, [&](int64_t offset, int count) {
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, values + offset, count, MPI_DOUBLE, MPI_SUM, comm_),
                "MPI_Allreduce");
    });
  }

  void broadcast(Tensor& t, int root) override {
    check_collective_tensor(t, "broadcast");
    AG_CHECK(root >= 0 && root < size_,
             "broadcast: root " << root << " is not a rank of this " << size_ << "-process world");
    Tensor host = host_view(t);
    for_each_chunk(host.numel(), [&](int64_t offset, int count) {
      check_mpi(MPI_Bcast(element(host, offset), count, mpi_type(t.dtype()), root, comm_), "MPI_Bcast");
    });
    if (!t.device().is_cpu()) t.copy_(host);
  }

  void barrier() override { check_mpi(MPI_Barrier(comm_), "MPI_Barrier"); }

  [[noreturn]] void abort(int code, const std::string& why) override {
    print_abort_reason(rank_, size_, why);
    std::fflush(stdout);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this is for the compiler
  }

 private:
  static void* element(const Tensor& host, int64_t offset) {
    return static_cast<char*>(host.raw_data()) + offset * static_cast<int64_t>(dtype_size(host.dtype()));
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace

bool launched_by_mpi() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") || std::getenv("PMIX_RANK");
}

std::unique_ptr<Communicator> mpi_init_world(int* argc, char*** argv) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    int provided = 0;
    const int code = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    AG_CHECK(code == MPI_SUCCESS, "MPI_Init_thread failed (error " << code << ")");
    g_we_initialised = true;
    AG_CHECK(provided >= MPI_THREAD_FUNNELED,
             "MPI provides thread level " << provided << ", arcgrad needs MPI_THREAD_FUNNELED");
  }
  // Failures of calls on the world (MPI_Abort aside) come back as codes, not as a silent exit.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  return std::make_unique<MpiCommunicator>();
}

void mpi_finalize() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (g_we_initialised && !finalized) MPI_Finalize();
  g_we_initialised = false;
}

}  // namespace ag::dist::detail
