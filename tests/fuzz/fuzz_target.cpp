// One libFuzzer program per reader (tests/fuzz/CMakeLists.txt compiles this file once per
// target, with AG_FUZZ_BODY naming its body in fuzz_inputs.h).
#include <cstddef>
#include <cstdint>

#include "fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ag::fuzz::AG_FUZZ_BODY(ag::fuzz::Input(data, size));  // accepted or rejected cleanly: both fine
  return 0;
}
