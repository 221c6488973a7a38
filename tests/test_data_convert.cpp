// Converter round trip: a dataset written as a PNG folder tree, converted to the CIFAR-10 and
// CIFAR-100 binary layouts, reads back identical (PNG is lossless).
#include "core/random.h"
#include "data/cifar.h"
#include "data/cifar_convert.h"
#include "data/image_folder.h"
#include "test_data_util.h"

using namespace ag;
using namespace ag_test;

namespace {

// n random 3x32x32 images; labels cycle so every class is present, sorted by class so the
// folder tree (read back class by class) keeps the same order.
Dataset random_cifar(int64_t n, const std::vector<std::string>& names, uint64_t seed) {
  Dataset d(3, 32, 32, names);
  Generator gen(seed);
  std::vector<uint8_t> img(3072);
  int64_t classes = d.num_classes();
  for (int64_t c = 0; c < classes; ++c) {
    for (int64_t i = c; i < n; i += classes) {
      for (auto& p : img) p = static_cast<uint8_t>(gen.next_u64());
      d.add(img.data(), c);
    }
  }
  return d;
}

void check_same(const Dataset& a, const Dataset& b) {
  REQUIRE(a.size() == b.size());
  CHECK(a.class_names() == b.class_names());
  bool same = true;
  for (int64_t i = 0; i < a.size(); ++i) {
    same = same && a.label(i) == b.label(i) && std::equal(a.image(i), a.image(i) + 3072, b.image(i));
  }
  CHECK(same);
}

}  // namespace

TEST_CASE("convert: image folder -> CIFAR-10 binary round trip") {
  TempDir dir;
  std::vector<std::string> names = {"cat", "dog", "frog"};
  Dataset train = random_cifar(23, names, 1), test = random_cifar(7, names, 2);
  write_image_folder(train, dir.path() + "/tree/train");
  write_image_folder(test, dir.path() + "/tree/test");
  ConvertOptions options;
  int64_t progress_calls = 0;
  options.progress = [&](const char*, int64_t, int64_t) { ++progress_calls; };
  ConvertResult r = convert_folder_to_cifar(dir.path() + "/tree", dir.path() + "/bin", options);
  CHECK(r.train == 23);
  CHECK(r.test == 7);
  CHECK(r.classes == 3);
  CHECK(progress_calls >= 2);
  // 23 records in 5 files of ceil(23/5) = 5: the last holds 3.
  CHECK(std::filesystem::file_size(dir.path() + "/bin/data_batch_1.bin") == 5 * 3073);
  CHECK(std::filesystem::file_size(dir.path() + "/bin/data_batch_5.bin") == 3 * 3073);
  check_same(train, read_cifar10(dir.path() + "/bin", Split::train));
  check_same(test, read_cifar10(dir.path() + "/bin", Split::test));
}

TEST_CASE("convert: CIFAR-100 layout with the official and a custom superclass map") {
  TempDir dir;
  std::vector<std::string> names = {"apple", "maple_tree", "whale"};  // official fine names, sorted
  Dataset train = random_cifar(9, names, 3), test = random_cifar(3, names, 4);
  write_image_folder(train, dir.path() + "/tree/train");
  write_image_folder(test, dir.path() + "/tree/test");
  ConvertOptions options;
  options.format = "cifar100";
  ConvertResult r = convert_folder_to_cifar(dir.path() + "/tree", dir.path() + "/bin", options);
  CHECK(r.superclasses == 20);
  check_same(train, read_cifar100(dir.path() + "/bin", Split::train, CifarLabels::fine));
  Dataset coarse = read_cifar100(dir.path() + "/bin", Split::test, CifarLabels::coarse);
  CHECK(coarse.num_classes() == 20);
  CHECK(coarse.label(0) == 4);   // apple: fruit_and_vegetables
  CHECK(coarse.label(1) == 17);  // maple_tree: trees
  CHECK(coarse.label(2) == 0);   // whale: aquatic_mammals

  write_text(dir.file("map.txt"), "apple food\nmaple_tree plant\nwhale animal\n");
  options.coarse_map = dir.file("map.txt");
  r = convert_folder_to_cifar(dir.path() + "/tree", dir.path() + "/bin2", options);
  CHECK(r.superclasses == 3);
  Dataset custom = read_cifar100(dir.path() + "/bin2", Split::train, CifarLabels::coarse);
  CHECK(custom.class_names() == std::vector<std::string>{"animal", "food", "plant"});
  CHECK(custom.label(0) == 1);
  CHECK(custom.label(8) == 0);
}

TEST_CASE("convert: wrong image size and unknown classes are errors") {
  TempDir dir;
  Dataset small(3, 8, 8, {"a"});
  std::vector<uint8_t> img(192, 5);
  small.add(img.data(), 0);
  write_image_folder(small, dir.path() + "/tree/train");
  write_image_folder(small, dir.path() + "/tree/test");
  CHECK(contains(error_of([&] { convert_folder_to_cifar(dir.path() + "/tree", dir.path() + "/o", {}); }),
                 "needs 32x32"));
  TempDir dir2;
  Dataset d = random_cifar(2, {"a", "b"}, 5);
  write_image_folder(d, dir2.path() + "/tree/train");
  write_image_folder(d, dir2.path() + "/tree/test");
  ConvertOptions options;
  options.format = "cifar100";
  CHECK(
      contains(error_of([&] { convert_folder_to_cifar(dir2.path() + "/tree", dir2.path() + "/o", options); }),
               "'a' is not a CIFAR-100 class"));
}
