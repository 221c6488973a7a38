// Data parallelism across processes, run by CTest as `mpirun -np 2 --oversubscribe
// test_dist_mpi` (tests/CMakeLists.txt): the MPI communicator's collectives, the gradient
// reducer against the single-process gradient of the whole batch, and sync batch norm
// against batch norm on the concatenated batch. Every rank runs every case; the ranks'
// results are combined at the end, so one failing rank fails the test. Checks never throw
// (CHECK, not REQUIRE): a rank that skipped a collective would leave the others waiting.
// Outside mpirun, or with one rank, the program reports itself skipped (exit 77).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cmath>
#include <iostream>
#include <vector>

#include "core/cuda_api.h"
#include "core/dist/comm.h"
#include "core/dist/reducer.h"
#include "core/dist/sync_batch_norm.h"
#include "core/ops.h"
#include "core/random.h"
#include "layers/batch_norm.h"

using namespace ag;

namespace {

dist::Communicator& W() { return dist::world(); }

// Values that differ per rank but are known everywhere: rank r's element i is r * 10 + i.
std::vector<double> rank_values(int rank, int n) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = rank * 10.0 + i;
  return v;
}

std::vector<double> expected_sum(int n) {
  std::vector<double> s(static_cast<size_t>(n), 0.0);
  for (int r = 0; r < W().size(); ++r) {
    const std::vector<double> v = rank_values(r, n);
    for (int i = 0; i < n; ++i) s[static_cast<size_t>(i)] += v[static_cast<size_t>(i)];
  }
  return s;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  CHECK(got.size() == want.size());
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    if (tol == 0)
      CHECK(got[i] == want[i]);
    else
      CHECK(got[i] == doctest::Approx(want[i]).epsilon(tol).scale(1.0));
  }
}

}  // namespace

TEST_CASE("mpi world: ranks and sizes") {
  CHECK(W().backend() == "mpi");
  CHECK(W().rank() >= 0);
  CHECK(W().rank() < W().size());
  CHECK(dist::is_distributed());
  double ranks = W().rank();
  W().allreduce_sum(&ranks, 1);
  CHECK(ranks == W().size() * (W().size() - 1) / 2.0);
}

TEST_CASE("mpi allreduce_sum: float32 and float64, in place") {
  for (DType dtype : {DType::f32, DType::f64}) {
    Tensor t = Tensor::from_vector(rank_values(W().rank(), 7), {7}, dtype);
    W().allreduce_sum(t);
    CHECK(t.dtype() == dtype);
    check_close(t.to_vector(), expected_sum(7), 0);
  }
  Tensor m = Tensor::from_vector(rank_values(W().rank(), 6), {2, 3}, DType::f32);
  W().allreduce_sum(m);
  CHECK(m.shape() == Shape{2, 3});
  check_close(m.to_vector(), expected_sum(6), 0);
}

TEST_CASE("mpi allreduce_sum_async: several in flight, finished by wait()") {
  std::vector<Tensor> ts;
  std::vector<std::unique_ptr<dist::Pending>> pending;
  for (int k = 0; k < 3; ++k) {
    ts.push_back(Tensor::from_vector(rank_values(W().rank(), 1000 + k), {1000 + k}, DType::f64));
    pending.push_back(W().allreduce_sum_async(ts.back()));
  }
  pending[1]->test();  // progress, never blocks
  for (auto& p : pending) p->wait();
  for (int k = 0; k < 3; ++k) check_close(ts[static_cast<size_t>(k)].to_vector(), expected_sum(1000 + k), 0);
  for (auto& p : pending) CHECK(p->test());
}

TEST_CASE("mpi broadcast from each root") {
  for (int root = 0; root < W().size(); ++root) {
    Tensor t = Tensor::from_vector(rank_values(W().rank(), 5), {5}, DType::f32);
    W().broadcast(t, root);
    check_close(t.to_vector(), rank_values(root, 5), 0);
  }
  Tensor t = Tensor::zeros({1});
  CHECK_THROWS_WITH_AS(W().broadcast(t, W().size()), doctest::Contains("is not a rank"), Error);
  W().barrier();
}

TEST_CASE("mpi allreduce of host doubles") {
  std::vector<double> v = rank_values(W().rank(), 4);
  W().allreduce_sum(v.data(), 4);
  check_close(v, expected_sum(4), 0);
}

// ---- the gradient reducer against one process on the whole batch

namespace {

struct Mlp {  // x [N, 4] -> tanh(x W1^T + b1) W2^T + b2 -> [N, 3], float64
  std::vector<Tensor> params;
  explicit Mlp(uint64_t seed) {
    manual_seed(seed);
    for (Shape s : {Shape{6, 4}, Shape{6}, Shape{3, 6}, Shape{3}, Shape{5}})
      params.push_back(Tensor::uniform(s, -1, 1, DType::f64).set_requires_grad(true));
  }
  // params[4] is used only when use_extra: an unused parameter otherwise.
  Tensor loss(const Tensor& x, const Tensor& target, bool use_extra) const {
    Tensor h = tanh(linear(x, params[0], params[1]));
    Tensor out = linear(h, params[2], params[3]);
    Tensor l = mean(mul(sub(out, target), sub(out, target)));
    if (use_extra) l = add(l, sum(mul(params[4], params[4])));
    return l;
  }
};

// The whole batch (the same on every rank) and this rank's contiguous shard of it.
struct Batch {
  Tensor x, target;
  Batch(int per_rank) {
    manual_seed(99);
    const int64_t n = static_cast<int64_t>(per_rank) * W().size();
    x = Tensor::uniform({n, 4}, -2, 2, DType::f64);
    target = Tensor::uniform({n, 3}, -1, 1, DType::f64);
  }
  Tensor shard(const Tensor& t) const {
    const int64_t per = t.size(0) / W().size();
    return t.slice(W().rank() * per, (W().rank() + 1) * per);
  }
};

}  // namespace

TEST_CASE("reducer: every rank ends with the gradient of the whole batch, over several buckets") {
  Batch batch(4);
  Mlp whole(5);
  whole.loss(batch.x, batch.target, true).backward();
  for (int64_t bucket_bytes : {int64_t{1} << 22, int64_t{64}}) {
    CAPTURE(bucket_bytes);
    Mlp local(5 + static_cast<uint64_t>(W().rank()));  // rank 0's values reach every rank by broadcast
    dist::GradientReducer reducer(W(), local.params, {.bucket_bytes = bucket_bytes});
    if (bucket_bytes == 64) CHECK(reducer.bucket_count() >= 4);  // W1 (192 B) is larger than a bucket
    for (int step = 0; step < 2; ++step) {
      for (Tensor& p : local.params) p.zero_grad();
      local.loss(batch.shard(batch.x), batch.shard(batch.target), true).backward();
      reducer.finish();
      for (size_t i = 0; i < local.params.size(); ++i) {
        CAPTURE(i);
        check_close(local.params[i].to_vector(), whole.params[i].to_vector(), 0);
        check_close(local.params[i].grad().to_vector(), whole.params[i].grad().to_vector(), 1e-12);
      }
    }
    CHECK(reducer.stats().bytes_last_step == (24 + 6 + 18 + 3 + 5 + 5) * 8);
    CHECK(reducer.stats().buckets_started_in_backward == reducer.bucket_count());
  }
}

TEST_CASE("reducer: a parameter unused on some ranks gets the mean with zeros, unused everywhere none") {
  Batch batch(3);
  Mlp local(8);
  dist::GradientReducer reducer(W(), local.params, {.bucket_bytes = 48});
  const bool use_extra = W().rank() == 0;  // params[4] only on rank 0
  local.loss(batch.shard(batch.x), batch.shard(batch.target), use_extra).backward();
  reducer.finish();
  // d/dp of sum(p^2) is 2 p on rank 0, zero elsewhere; the mean divides by the size.
  std::vector<double> want = local.params[4].to_vector();
  for (double& v : want) v = 2 * v / W().size();
  check_close(local.params[4].grad().to_vector(), want, 1e-12);
  // No rank uses it now: the gradient stays undefined on every rank, as in one process.
  for (Tensor& p : local.params) p.zero_grad();
  local.loss(batch.shard(batch.x), batch.shard(batch.target), false).backward();
  reducer.finish();
  CHECK_FALSE(local.params[4].grad().defined());
  CHECK(local.params[0].grad().defined());
}

TEST_CASE("reducer: different parameter lists on the ranks are caught on every rank") {
  std::vector<Tensor> params{Tensor::zeros({W().rank() == 0 ? 3 : 4}, DType::f64).set_requires_grad(true)};
  CHECK_THROWS_WITH_AS(dist::GradientReducer(W(), params), doctest::Contains("different parameter lists"),
                       Error);
}

// ---- sync batch norm against batch norm on the concatenated batch

TEST_CASE("sync batch norm: each rank's half equals batch norm on the whole batch (float64)") {
  for (Activation act : {Activation::none, Activation::relu}) {
    for (Shape shape : {Shape{4, 3}, Shape{2, 3, 5}, Shape{2, 3, 3, 2}}) {
      CAPTURE(shape_str(shape));
      manual_seed(31);  // the same whole batch on every rank
      Shape whole_shape = shape;
      whole_shape[0] *= W().size();
      Tensor x = Tensor::uniform(whole_shape, -2, 3, DType::f64).set_requires_grad(true);
      Tensor up = Tensor::uniform(whole_shape, -1, 1, DType::f64);
      Tensor w = Tensor::uniform({shape[1]}, 0.5, 1.5, DType::f64).set_requires_grad(true);
      Tensor b = Tensor::uniform({shape[1]}, -1, 1, DType::f64).set_requires_grad(true);
      Tensor rm = Tensor::zeros({shape[1]}, DType::f64), rv = Tensor::ones({shape[1]}, DType::f64);
      Tensor y = batch_norm(x, w, b, rm, rv, true, 0.1, 1e-5, act);
      sum(mul(y, up)).backward();
      // This rank's half, through sync batch norm.
      const int64_t per = shape[0], lo = W().rank() * per;
      Tensor xs = x.detach().slice(lo, lo + per).clone().set_requires_grad(true);
      Tensor ws = w.detach().clone().set_requires_grad(true), bs = b.detach().clone().set_requires_grad(true);
      Tensor rms = Tensor::zeros({shape[1]}, DType::f64), rvs = Tensor::ones({shape[1]}, DType::f64);
      Tensor ys = dist::sync_batch_norm(xs, ws, bs, rms, rvs, true, 0.1, 1e-5, act, W());
      sum(mul(ys, up.slice(lo, lo + per))).backward();
      check_close(ys.to_vector(), y.detach().slice(lo, lo + per).to_vector(), 1e-12);
      check_close(xs.grad().to_vector(), x.grad().slice(lo, lo + per).to_vector(), 1e-12);
      check_close(rms.to_vector(), rm.to_vector(), 1e-12);
      check_close(rvs.to_vector(), rv.to_vector(), 1e-12);
      // gamma's and beta's gradients are per-rank sums: over the ranks, the whole batch's.
      Tensor gw = ws.grad().clone(), gb = bs.grad().clone();
      W().allreduce_sum(gw);
      W().allreduce_sum(gb);
      check_close(gw.to_vector(), w.grad().to_vector(), 1e-12);
      check_close(gb.to_vector(), b.grad().to_vector(), 1e-12);
    }
  }
}

TEST_CASE("sync batch norm: ranks with different batch sizes; the BatchNorm module in sync mode") {
  manual_seed(32);
  const int64_t total = 3 * W().size() + 1;  // rank 0 takes one more row
  Tensor x = Tensor::uniform({total, 2, 2, 2}, -1, 2, DType::f64);
  const int64_t lo = W().rank() == 0 ? 0 : 3 * W().rank() + 1, hi = 3 * W().rank() + 4;
  BatchNorm2d plain(2), synced(2);
  plain.to(DType::f64);
  synced.to(DType::f64);
  CHECK(use_sync_batch_norm(synced) == 1);
  Tensor want = plain(x).slice(lo, hi);
  Tensor got = synced(x.slice(lo, hi).contiguous());
  check_close(got.to_vector(), want.to_vector(), 1e-12);
  check_close(synced.running_var().to_vector(), plain.running_var().to_vector(), 1e-12);
  synced.eval();  // eval: running statistics, no communication
  plain.eval();
  // (to rounding: the running statistics agree to 1e-12 above, not bit for bit, since
  // batch_norm sums small planes in another order than sync_batch_norm)
  check_close(synced(x.slice(lo, hi).contiguous()).to_vector(), plain(x).slice(lo, hi).to_vector(), 1e-12);
}

// ---- CUDA tensors: through the host over MPI, and GPU to GPU over NCCL. These cases need
// a GPU (and NCCL a GPU per rank); without one they say why and check nothing. CTest also
// runs the NCCL cases alone under `mpirun -np 1` (test_dist_nccl_1rank), which one GPU can.

namespace {

// Why the CUDA cases cannot run here ("" when they can). Every rank sees the same answer.
std::string cuda_unavailable() {
  if (!ag::cuda::is_available()) return "no CUDA device (" + ag::cuda::unavailable_reason() + ")";
  return "";
}

std::string nccl_unavailable() {
  if (!dist::built_with_nccl()) return "arcgrad built without NCCL";
  std::string why = cuda_unavailable();
  if (!why.empty()) return why;
  if (ag::cuda::device_count() < W().size())
    return std::to_string(W().size()) + " ranks but " + std::to_string(ag::cuda::device_count()) +
           " GPU(s): NCCL needs one GPU per rank";
  return "";
}

Device my_gpu() { return Device::cuda(W().rank() % std::max(1, ag::cuda::device_count())); }

bool skip_because(const std::string& why) {
  if (why.empty()) return false;
  if (W().rank() == 0) MESSAGE("skipped: " << why);
  return true;
}

}  // namespace

TEST_CASE("mpi with CUDA tensors: allreduce, async and broadcast through the host") {
  if (W().size() < 2 || skip_because(cuda_unavailable())) return;
  Tensor t = Tensor::from_vector(rank_values(W().rank(), 9), {9}, DType::f32).to(my_gpu());
  W().allreduce_sum(t);
  CHECK(t.device() == my_gpu());
  check_close(t.to_vector(), expected_sum(9), 0);
  Tensor a = Tensor::from_vector(rank_values(W().rank(), 5), {5}, DType::f64).to(my_gpu());
  auto pending = W().allreduce_sum_async(a);
  pending->wait();
  check_close(a.to_vector(), expected_sum(5), 0);
  W().broadcast(a, W().size() - 1);
  check_close(a.to_vector(), expected_sum(5), 0);
}

TEST_CASE("nccl: allreduce float32/float64, async, broadcast on the GPU") {
  if (skip_because(nccl_unavailable())) return;
  dist::Communicator& nccl = dist::world_for(my_gpu());
  CHECK(nccl.backend() == "nccl");
  CHECK(nccl.rank() == W().rank());
  CHECK(nccl.size() == W().size());
  for (DType dtype : {DType::f32, DType::f64}) {
    Tensor t = Tensor::from_vector(rank_values(W().rank(), 1000), {10, 100}, dtype).to(my_gpu());
    nccl.allreduce_sum(t);
    check_close(t.to_vector(), expected_sum(1000), 0);
  }
  std::vector<Tensor> ts;
  std::vector<std::unique_ptr<dist::Pending>> pending;
  for (int k = 0; k < 3; ++k) {
    ts.push_back(Tensor::from_vector(rank_values(W().rank(), 300 + k), {300 + k}, DType::f32).to(my_gpu()));
    pending.push_back(nccl.allreduce_sum_async(ts.back()));
  }
  for (auto& p : pending) p->wait();
  for (int k = 0; k < 3; ++k) check_close(ts[static_cast<size_t>(k)].to_vector(), expected_sum(300 + k), 0);
  Tensor b = Tensor::from_vector(rank_values(W().rank(), 4), {4}, DType::f64).to(my_gpu());
  nccl.broadcast(b, 0);
  check_close(b.to_vector(), rank_values(0, 4), 0);
  double host = 1;
  nccl.allreduce_sum(&host, 1);  // host values go through MPI
  CHECK(host == W().size());
}

TEST_CASE("nccl: the reducer on GPU parameters gives the whole batch's gradient") {
  if (skip_because(nccl_unavailable())) return;
  Batch batch(4);
  Mlp whole(5);
  whole.loss(batch.x, batch.target, true).backward();
  Mlp local(5 + static_cast<uint64_t>(W().rank()));
  for (Tensor& p : local.params) p = p.detach().to(my_gpu()).set_requires_grad(true);
  dist::GradientReducer reducer(dist::world_for(my_gpu()), local.params, {.bucket_bytes = 64});
  local.loss(batch.shard(batch.x).to(my_gpu()), batch.shard(batch.target).to(my_gpu()), true).backward();
  reducer.finish();
  for (size_t i = 0; i < local.params.size(); ++i) {
    CAPTURE(i);
    check_close(local.params[i].to_vector(), whole.params[i].to_vector(), 0);
    check_close(local.params[i].grad().to_vector(), whole.params[i].grad().to_vector(), 1e-11);
  }
}

int main(int argc, char** argv) {
  dist::init(&argc, &argv);
  doctest::Context context(argc, argv);
  if (W().size() < 2) {
    // One rank (test_dist_nccl_1rank): only the NCCL cases, when a GPU can run them.
    const std::string why = !dist::built_with_mpi()  ? "arcgrad built without MPI"
                            : W().backend() != "mpi" ? "not launched by mpirun"
                                                     : nccl_unavailable();
    if (!why.empty()) {
      std::cout << "skipped: " << why << " (the multi-rank cases need mpirun -np 2)\n";
      dist::finalize();
      return 77;
    }
    context.addFilter("test-case", "nccl*");
  }
  const int result = context.run();
  double failed = result != 0 ? 1 : 0;
  W().allreduce_sum(&failed, 1);
  if (W().rank() == 0) std::cout << "ranks failing: " << failed << " of " << W().size() << "\n";
  dist::finalize();
  return failed > 0 ? 1 : 0;
}
