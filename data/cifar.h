// Readers and writers for the official CIFAR binary formats
// (https://www.cs.toronto.edu/~kriz/cifar.html).
//   CIFAR-10:  data_batch_1.bin .. data_batch_5.bin (train), test_batch.bin, batches.meta.txt;
//              record = 1 label byte + 3072 pixel bytes (1024 R, 1024 G, 1024 B, 32x32 row-major).
//   CIFAR-100: train.bin, test.bin, fine_label_names.txt, coarse_label_names.txt;
//              record = 1 coarse label byte + 1 fine label byte + 3072 pixel bytes.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"

namespace ag {

constexpr int64_t kCifarImageBytes = 3 * 32 * 32;
constexpr int kCifar10TrainBatches = 5;

enum class CifarLabels { fine, coarse };  // CIFAR-100's 100 classes or its 20 superclasses

// dir holds the files listed above (e.g. the unpacked cifar-10-batches-bin/).
Dataset read_cifar10(const std::string& dir, Split split);
Dataset read_cifar100(const std::string& dir, Split split, CifarLabels labels = CifarLabels::fine);

// One CIFAR-layout file: records of label_bytes label bytes then 3072 pixel bytes; the label
// used is byte label_index, checked against class_names.size(). Appends to out.
void read_cifar_records(const std::string& path, int label_bytes, int label_index, Dataset& out);

// Writers: the inverse of the readers. Images must be 3x32x32.
// CIFAR-10: the training set is cut into 5 batch files of ceil(N/5) records (10,000 for
// the real set); the class names go to batches.meta.txt.
void write_cifar10(const Dataset& train, const Dataset& test, const std::string& dir);
// CIFAR-100: coarse_of_fine[f] is the superclass of fine class f.
void write_cifar100(const Dataset& train, const Dataset& test, const std::vector<int64_t>& coarse_of_fine,
                    const std::vector<std::string>& coarse_names, const std::string& dir);
void write_cifar_records(const Dataset& data, const std::vector<int64_t>* coarse_of_fine, int64_t begin,
                         int64_t end, const std::string& path);

// The official CIFAR-100 names and superclass map, so a CIFAR-100 image folder (whose
// folders are the fine names) can be written with its coarse labels.
const std::vector<std::string>& cifar100_fine_names();
const std::vector<std::string>& cifar100_coarse_names();
// For each name in fine_names, the index of its official superclass; an unknown name is an
// error naming it.
std::vector<int64_t> cifar100_coarse_of_fine(const std::vector<std::string>& fine_names);

}  // namespace ag
