// The world of one process: rank 0 of 1. Every collective leaves its data as it is (the sum
// over one rank), after the same argument checks as the real backends, so that code which
// is wrong under mpirun is already wrong here.
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "core/dist/backends.h"

namespace ag::dist::detail {

namespace {

class DonePending : public Pending {
 public:
  void wait() override {}
  bool test() override { return true; }
};

class SingleCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "single"; }

  void allreduce_sum(Tensor& t) override { check_collective_tensor(t, "allreduce_sum"); }
  std::unique_ptr<Pending> allreduce_sum_async(Tensor& t) override {
    check_collective_tensor(t, "allreduce_sum_async");
    return std::make_unique<DonePending>();
  }
  void allreduce_sum(double* values, int64_t n) override {
    AG_CHECK(n >= 0 && (values || n == 0), "allreduce_sum: needs n >= 0 host values, got n = " << n);
  }
  void broadcast(Tensor& t, int root) override {
    check_collective_tensor(t, "broadcast");
    AG_CHECK(root == 0, "broadcast: root " << root << " is not a rank of a 1-process world");
  }
  void barrier() override {}
  [[noreturn]] void abort(int code, const std::string& why) override {
    print_abort_reason(0, 1, why);
    std::fflush(stdout);
    std::_Exit(code);
  }
};

}  // namespace

std::unique_ptr<Communicator> make_single_world() { return std::make_unique<SingleCommunicator>(); }

void check_collective_tensor(const Tensor& t, const char* what) {
  AG_CHECK(t.defined(), what << ": the tensor is undefined");
  AG_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64,
           what << ": needs a float32 or float64 tensor, got " << t.describe());
  AG_CHECK(t.is_contiguous(),
           what << ": needs a contiguous tensor (call contiguous() first), got a view " << t.describe());
}

void print_abort_reason(int rank, int size, const std::string& why) {
  std::cerr << "[rank " << rank << "/" << size << "] arcgrad: " << why << std::endl;
}

}  // namespace ag::dist::detail
