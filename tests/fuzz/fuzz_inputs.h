// The bodies of the fuzz targets (tests/fuzz/fuzz_target.cpp) and of their regression test
// in the normal suite (tests/test_fuzz_inputs.cpp): each feeds one arbitrary input to a
// reader the way a user's file would reach it, as a file in a scratch folder.
//
// A reader may reject an input only with ag::Error (one message naming what is wrong),
// which the body swallows, returning false (true: the reader accepted the input). Anything else escapes: another exception (std::out_of_range, a
// raw nlohmann::json error, std::bad_alloc...) ends the program, and a crash, a leak or an
// ASan/UBSan report is caught by the sanitizers; libFuzzer reports all of them.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ag::fuzz {

using Input = std::span<const uint8_t>;

// byte 0: bit 0 CIFAR-100 layout (else CIFAR-10), bit 1 coarse labels, bit 2 the rest is
// batches.meta.txt (class names) instead of records; the rest: the file.
bool cifar(Input data);
// byte 0 % 3: 0 raw files, 1 gzip-compressed by the body, 2 the bytes as they are in a
// ".gz" file; bytes 1-2: where the images file ends and the labels file starts.
bool idx(Input data);
// byte 0 % 3: the folder reader's channels option (0 as the file, 1 grey, 3 RGB); bytes
// 1-2: where the first image file ends and the second starts (both in one class folder).
bool image_folder(Input data);
// The whole input is a .safetensors file.
bool safetensors(Input data);
// byte 0 bit 0: 0 the rest is checkpoint.safetensors; 1 the rest is the JSON text of the
// checkpoint's metadata (TrainState and TrainConfig), in an otherwise valid file. Either
// way: read_checkpoint_state, then TrainConfig::from_json and validate on its config.
bool checkpoint(Input data);

struct Target {
  const char* name;  // its corpus folder: tests/fuzz/corpus/<name>/
  bool (*run)(Input);
};
const std::vector<Target>& targets();

}  // namespace ag::fuzz
