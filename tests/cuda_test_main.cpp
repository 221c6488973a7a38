// The main of the GPU suites (test_cuda_*.cpp). Without a usable CUDA device the whole
// program prints why and exits with AG_TEST_SKIP_CODE, which tests/CMakeLists.txt registers
// as the suites' SKIP_RETURN_CODE: CTest then reports them as skipped, never as passed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <iostream>

#include "core/cuda_api.h"

int main(int argc, char** argv) {
  if (!ag::cuda::is_available()) {
    std::cout << "skipped: no CUDA device (" << ag::cuda::unavailable_reason() << ")\n";
    return AG_TEST_SKIP_CODE;
  }
  return doctest::Context(argc, argv).run();
}
