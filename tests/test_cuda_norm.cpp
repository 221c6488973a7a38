// CPU-vs-CUDA parity of the batch-norm kernels (core/cuda/batch_norm.cu): train and eval
// forward, backward with batch or running statistics, each with the fused activations;
// and float64 gradchecks of batch_norm running on the GPU. Skipped with a printed reason
// when no GPU is present.
#include "core/ops.h"
#include "cuda_parity.h"
#include "gradcheck.h"

using namespace ag;
using namespace ag::testing;

TEST_CASE("cuda parity: batch norm train / eval forward and backward with fused activations") {
  AG_SKIP_WITHOUT_GPU();
  for (DType dt : float_dtypes())
    for (const Shape& xs : {Shape{5, 3, 4, 6}, Shape{7, 4}, Shape{2, 3, 33, 35}})
      for (Activation act : {Activation::none, Activation::relu, Activation::relu6})
        for (bool affine : {true, false}) {
          const int64_t c = xs[1];
          // beta up to 5: the outputs reach both sides of relu6 (0 and 6), where the act' mask
          // (read from y on CUDA, recomputed from x on the CPU) switches
          Tensor x = rand_cpu(xs, dt, -1, 5), gamma = rand_cpu({c}, dt, 0.5, 2),
                 beta = rand_cpu({c}, dt, -1, 5);
          Tensor rm = rand_cpu({c}, dt), rv = rand_cpu({c}, dt, 0.5, 2), g = rand_cpu(xs, dt);
          const std::string what = "batch_norm x=" + shape_str(xs) + " act=" + activation_name(act) +
                                   (affine ? " affine " : " plain ") + dtype_name(dt);
          check_parity(
              what,
              [&](Device d) -> std::vector<Tensor> {
                Tensor y = poisoned(xs, dt, d), mean = poisoned({c}, dt, d), istd = poisoned({c}, dt, d);
                Tensor run_m = rm.to(d).clone(), run_v = rv.to(d).clone();
                const Tensor gm = affine ? gamma.to(d) : Tensor(), bt = affine ? beta.to(d) : Tensor();
                batch_norm_forward_train(y, mean, istd, run_m, run_v, x.to(d), gm, bt, 0.1, 1e-5, act);
                Tensor y_eval = poisoned(xs, dt, d);
                batch_norm_forward_eval(y_eval, x.to(d), rm.to(d), rv.to(d), gm, bt, act);
                std::vector<Tensor> outs = {y, mean, istd, run_m, run_v, y_eval};
                for (bool training : {true, false}) {
                  Tensor gx = poisoned(xs, dt, d), gg = poisoned({c}, dt, d), gb = poisoned({c}, dt, d);
                  batch_norm_backward(gx, gg, gb, g.to(d), x.to(d), y, mean, istd, gm, bt, training, act);
                  outs.insert(outs.end(), {gx, gg, gb});
                }
                // Only the parameter gradients (grad_x undefined), as for a frozen input.
                Tensor none, gg = poisoned({c}, dt, d), gb = poisoned({c}, dt, d);
                batch_norm_backward(none, gg, gb, g.to(d), x.to(d), y, mean, istd, gm, bt, true, act);
                outs.insert(outs.end(), {gg, gb});
                return outs;
              },
              tol_for(dt, 20));
        }
}

TEST_CASE("cuda gradcheck: batch norm on the GPU") {
  AG_SKIP_WITHOUT_GPU();
  Tensor x = random_leaf({2, 4, 6, 5});
  Tensor gamma = random_leaf({4}, 0.5, 2.0), beta = random_leaf({4});
  CHECK_GRADCHECK([&] { return host(batch_norm(gpu(x), gpu(gamma), gpu(beta), Tensor(), Tensor(), true)); },
                  {x, gamma, beta});
  Tensor rm = random_leaf({4}).detach(), rv = random_leaf({4}, 0.5, 2.0).detach();
  CHECK_GRADCHECK([&] { return host(batch_norm(gpu(x), gpu(gamma), gpu(beta), gpu(rm), gpu(rv), false)); },
                  {x, gamma, beta});
}
