// One entry point for apps: open_dataset("cifar10", dir, Split::train).
//   kind           dir holds
//   cifar10        data_batch_{1..5}.bin, test_batch.bin[, batches.meta.txt]  or an image
//                  folder tree train/<class>/*.jpg, test/<class>/*.jpg (e.g. cifar-10-jpeg.tar.gz)
//   cifar100       train.bin, test.bin, *_label_names.txt  or an image folder tree of the fine
//                  classes (coarse labels then come from the official superclass map)
//   fashion-mnist  {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; dir "" means
//                  /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist)
//   mnist          the same file names
//   folder         train/<class>/<image>, test/<class>/<image>
#pragma once

#include <string>

#include "data/cifar.h"
#include "data/dataset.h"
#include "data/image_folder.h"

namespace ag {

struct DatasetOptions {
  CifarLabels cifar100_labels = CifarLabels::fine;
  FolderOptions folder;  // for image folder trees
};

Dataset open_dataset(const std::string& kind, const std::string& dir, Split split,
                     const DatasetOptions& options = {});
// "cifar10|cifar100|fashion-mnist|mnist|folder", for help texts.
const char* dataset_kinds();
// Parses "fine"/"coarse", "train"/"test"; anything else is an error naming the text.
CifarLabels parse_cifar_labels(const std::string& text);
Split parse_split(const std::string& text);

}  // namespace ag
