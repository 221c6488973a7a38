// Dataset: an in-memory set of same-sized images with integer labels. Every reader (CIFAR-10,
// CIFAR-100, IDX, image folder) produces one, so the loader, transforms and apps treat all
// sources alike. Pixels are kept compactly as uint8 CHW (the CIFAR record layout), 3 KiB per
// 32x32 RGB image, so CIFAR's 60,000 images take 180 MiB.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ag {

enum class Split { train, test };
const char* split_name(Split split);

// One decoded example as tensors.
struct Example {
  Tensor image;   // [C,H,W] float32, pixel/255 in [0,1]
  int64_t label;  // in [0, num_classes)
};

class Dataset {
 public:
  Dataset() = default;
  Dataset(int64_t channels, int64_t height, int64_t width, std::vector<std::string> class_names);

  int64_t size() const { return static_cast<int64_t>(labels_.size()); }
  int64_t channels() const { return channels_; }
  int64_t height() const { return height_; }
  int64_t width() const { return width_; }
  int64_t image_bytes() const { return channels_ * height_ * width_; }
  int64_t num_classes() const { return static_cast<int64_t>(class_names_.size()); }
  const std::vector<std::string>& class_names() const { return class_names_; }
  // Where the data came from (a file or folder), for messages.
  const std::string& source() const { return source_; }
  void set_source(const std::string& source) { source_ = source; }

  // Image i as uint8 [C,H,W]; valid while the dataset lives and is not appended to.
  const uint8_t* image(int64_t i) const;
  int64_t label(int64_t i) const;
  Example get(int64_t i) const;

  // Capacity for n images in all, so that appending file after file does not reallocate.
  void reserve(int64_t n);
  // Makes room for n more images; their pixels are written through mutable_image().
  void resize(int64_t n);
  uint8_t* mutable_image(int64_t i);
  void set_label(int64_t i, int64_t label);  // checked against num_classes
  // Appends one image, uint8 [C,H,W].
  void add(const uint8_t* chw, int64_t label);

  // The examples at the given indices, in that order (e.g. a validation split).
  Dataset subset(const std::vector<int64_t>& indices) const;
  // Every image inside a zero (black) border of `border` pixels on each side:
  // [C, H + 2 border, W + 2 border]. Fashion-MNIST with border 2 is 32x32, as LeNet-5 fed
  // MNIST; see TrainConfig::border for why that is worth doing.
  Dataset with_border(int64_t border) const;
  // How many examples each class has; a quick sanity check on a split.
  std::vector<int64_t> class_counts() const;

 private:
  void check_index(int64_t i) const;

  int64_t channels_ = 0;
  int64_t height_ = 0;
  int64_t width_ = 0;
  std::vector<std::string> class_names_;
  std::string source_;
  std::vector<uint8_t> pixels_;  // size() * image_bytes(), image after image
  std::vector<int32_t> labels_;
};

// Reads a text file of names, one per line; blank lines (the official CIFAR-10
// batches.meta.txt ends with some) are skipped.
std::vector<std::string> read_name_list(const std::string& path);

}  // namespace ag
