#include "core/precision.h"

#include <atomic>

#include "core/cpu/bf16/gemm.h"
#include "core/error.h"

namespace ag {

namespace {
std::atomic<MatmulPrecision> current{MatmulPrecision::fp32};
}  // namespace

void set_matmul_precision(MatmulPrecision precision) {
  if (precision == MatmulPrecision::bf16) {
    const std::string why = cpu::bf16_gemm_unavailable_reason();
    AG_CHECK(why.empty(), "matmul precision bf16 is not available: " << why);
  }
  current.store(precision, std::memory_order_relaxed);
}

MatmulPrecision matmul_precision() { return current.load(std::memory_order_relaxed); }

bool bf16_matmul_for(DType dtype) {
  return dtype == DType::f32 && matmul_precision() == MatmulPrecision::bf16;
}

void check_bf16_device(const char* op, DType dtype, bool on_cpu) {
  AG_CHECK(on_cpu || !bf16_matmul_for(dtype),
           op << ": matmul precision bf16 is CPU-only for now (AVX512-BF16); use fp32 on CUDA");
}

const char* precision_name(MatmulPrecision precision) {
  return precision == MatmulPrecision::bf16 ? "bf16" : "fp32";
}

MatmulPrecision parse_matmul_precision(const std::string& name) {
  if (name == "fp32") return MatmulPrecision::fp32;
  if (name == "bf16") return MatmulPrecision::bf16;
  AG_FAIL("matmul precision must be fp32 or bf16, got '" << name << "'");
}

}  // namespace ag
