// The main of the bfloat16 suites (test_bf16_*.cpp). Where the bf16 GEMM cannot run (a CPU
// without AVX512-BF16, or a build without its kernel) the program prints why and exits with
// AG_TEST_SKIP_CODE, which CTest reports as skipped, never as passed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <iostream>

#include "core/cpu/bf16/gemm.h"

int main(int argc, char** argv) {
  if (!ag::cpu::bf16_gemm_available()) {
    std::cout << "skipped: " << ag::cpu::bf16_gemm_unavailable_reason() << "\n";
    return AG_TEST_SKIP_CODE;
  }
  return doctest::Context(argc, argv).run();
}
