// The NCCL communicator (built with CUDA + MPI when nccl.h and libnccl are found): allreduce
// and broadcast of CUDA tensors GPU to GPU, no copy through the host. One rank per GPU;
// the ranks are those of the MPI world, which also carries the ncclUniqueId from rank 0
// (the bootstrap), the host-value reductions, the barrier and the abort.
//
// Streams: arcgrad queues every kernel of a device on one stream (core/cuda/cuda_common.h).
// NCCL runs on a stream of its own, so communication overlaps the kernels that follow
// (the rest of backward). Order is kept with events: the NCCL stream waits for the work
// that produced the tensor; wait() makes arcgrad's stream wait for the collective (the
// host does not block; anything later on the device, and any host read, sees the result).
// The Pending keeps the tensor alive until then, so the caching allocator cannot hand its
// block out while NCCL still writes it.
#include <nccl.h>

#include <cstdlib>
#include <cstring>

#include "core/cuda/cuda_common.h"
#include "core/dist/backends.h"

namespace ag::dist::detail {

namespace {

#define AG_NCCL_CHECK(expr)                                                                              \
  do {                                                                                                   \
    const ncclResult_t ag_nccl_status_ = (expr);                                                         \
    if (ag_nccl_status_ != ncclSuccess)                                                                  \
      ::ag::detail::throw_error(__FILE__, __LINE__,                                                      \
                                std::string(#expr) + " failed: " + ncclGetErrorString(ag_nccl_status_) + \
                                    " (a peer rank may have died, or two ranks share a GPU)");           \
  } while (0)

ncclDataType_t nccl_type(DType dtype) { return dtype == DType::f64 ? ncclFloat64 : ncclFloat32; }

cudaEvent_t record_event(cudaStream_t stream) {
  cudaEvent_t event;
  AG_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  AG_CUDA_CHECK(cudaEventRecord(event, stream));
  return event;
}

class NcclPending : public Pending {
 public:
  NcclPending(cudaEvent_t done, Tensor keep, int device)
      : done_(done), keep_(std::move(keep)), device_(device) {}
  ~NcclPending() override {
    if (!waited_) {
      try {
        wait();
      } catch (...) {  // a destructor must not throw; the failed collective already reported
      }
    }
    (void)cudaEventDestroy(done_);
  }
  void wait() override {
    if (waited_) return;
    cuda::DeviceGuard guard(device_);
    AG_CUDA_CHECK(cudaStreamWaitEvent(cuda::stream(device_), done_, 0));
    waited_ = true;
    keep_ = Tensor();  // arcgrad's stream is now ordered after the collective
  }
  bool test() override {
    const cudaError_t status = cudaEventQuery(done_);
    if (status == cudaErrorNotReady) return false;
    AG_CUDA_CHECK(status);
    return true;
  }

 private:
  cudaEvent_t done_;
  Tensor keep_;
  int device_;
  bool waited_ = false;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(Communicator& bootstrap, int device) : bootstrap_(bootstrap), device_(device) {
    // The unique id (128 bytes) travels as float64 bit patterns: MPI copies them unchanged.
    ncclUniqueId id;
    Tensor packed = Tensor::zeros({static_cast<int64_t>((sizeof(id) + 7) / 8)}, DType::f64);
    if (bootstrap.rank() == 0) {
      AG_NCCL_CHECK(ncclGetUniqueId(&id));
      std::memcpy(packed.raw_data(), &id, sizeof(id));
    }
    bootstrap.broadcast(packed, 0);
    std::memcpy(&id, packed.raw_data(), sizeof(id));
    cuda::DeviceGuard guard(device_);
    AG_NCCL_CHECK(ncclCommInitRank(&comm_, bootstrap.size(), id, bootstrap.rank()));
    AG_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  ~NcclCommunicator() override {
    cuda::DeviceGuard guard(device_);
    (void)cudaStreamSynchronize(stream_);
    (void)ncclCommDestroy(comm_);
    (void)cudaStreamDestroy(stream_);
  }

  int rank() const override { return bootstrap_.rank(); }
  int size() const override { return bootstrap_.size(); }
  std::string backend() const override { return "nccl"; }

  void allreduce_sum(Tensor& t) override {
    if (t.defined() && t.device().is_cpu()) return bootstrap_.allreduce_sum(t);
    allreduce_sum_async(t)->wait();
  }

  std::unique_ptr<Pending> allreduce_sum_async(Tensor& t) override {
    if (t.defined() && t.device().is_cpu()) return bootstrap_.allreduce_sum_async(t);
    check(t, "allreduce_sum_async");
    cuda::DeviceGuard guard(device_);
    start_after_compute();
    AG_NCCL_CHECK(ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()),
                                nccl_type(t.dtype()), ncclSum, comm_, stream_));
    return std::make_unique<NcclPending>(record_event(stream_), t, device_);
  }

  void allreduce_sum(double* values, int64_t n) override { bootstrap_.allreduce_sum(values, n); }

  void broadcast(Tensor& t, int root) override {
    if (t.defined() && t.device().is_cpu()) return bootstrap_.broadcast(t, root);
    check(t, "broadcast");
    AG_CHECK(root >= 0 && root < size(),
             "broadcast: root " << root << " is not a rank of this " << size() << "-process world");
    cuda::DeviceGuard guard(device_);
    start_after_compute();
    AG_NCCL_CHECK(ncclBroadcast(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()),
                                nccl_type(t.dtype()), root, comm_, stream_));
    NcclPending(record_event(stream_), t, device_).wait();
  }

  void barrier() override { bootstrap_.barrier(); }

  [[noreturn]] void abort(int code, const std::string& why) override {
    (void)ncclCommAbort(comm_);
    bootstrap_.abort(code, why);
    std::_Exit(code);  // not reached: the bootstrap's abort ends the job
  }

 private:
  void check(const Tensor& t, const char* what) const {
    check_collective_tensor(t, what);
    AG_CHECK(t.device() == Device::cuda(device_), what << ": this NCCL communicator serves cuda:" << device_
                                                       << ", got a tensor on " << t.device());
  }
  // The NCCL stream waits for everything queued so far on arcgrad's stream of the device.
  void start_after_compute() {
    cudaEvent_t ready = record_event(cuda::stream(device_));
    AG_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready, 0));
    AG_CUDA_CHECK(cudaEventDestroy(ready));  // released once the wait has been satisfied
  }

  Communicator& bootstrap_;
  int device_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, int device) {
  return std::make_unique<NcclCommunicator>(bootstrap, device);
}

}  // namespace ag::dist::detail
