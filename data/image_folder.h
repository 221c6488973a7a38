// An image-folder dataset: root/<class>/<image>.png|jpg|jpeg|bmp, classes numbered in the
// sorted order of their folder names, images taken in sorted file-name order (so the
// dataset is the same on every machine). All images are decoded up front, on several
// threads, into the compact uint8 CHW store; they must share one size.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "data/dataset.h"
#include "data/image_codec.h"

namespace ag {

struct FolderOptions {
  int channels = 3;     // 3: RGB, 1: grey (images are converted), 0: as the first file
  int num_threads = 0;  // decoding threads; 0: all hardware threads
  // Called now and then with (images decoded so far, total), for a progress line.
  std::function<void(int64_t, int64_t)> progress;
};

Dataset read_image_folder(const std::string& root, const FolderOptions& options = {});

// Writes data as root/<class>/<NNNNN>.png|jpg (the inverse of read_image_folder; used by
// the tests and to export a dataset for viewing).
void write_image_folder(const Dataset& data, const std::string& root, ImageFormat format = ImageFormat::png,
                        int jpeg_quality = 95);

}  // namespace ag
