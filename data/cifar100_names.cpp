// The official CIFAR-100 class names and the fine -> superclass map (from the dataset's
// documentation), so an image folder of fine classes can be written with coarse labels.
#include <algorithm>
#include <map>

#include "core/error.h"
#include "data/cifar.h"

namespace ag {

namespace {

struct Superclass {
  const char* name;
  const char* members[5];
};

// In the order of the official coarse_label_names.txt.
const Superclass kSuperclasses[20] = {
    {"aquatic_mammals", {"beaver", "dolphin", "otter", "seal", "whale"}},
    {"fish", {"aquarium_fish", "flatfish", "ray", "shark", "trout"}},
    {"flowers", {"orchid", "poppy", "rose", "sunflower", "tulip"}},
    {"food_containers", {"bottle", "bowl", "can", "cup", "plate"}},
    {"fruit_and_vegetables", {"apple", "mushroom", "orange", "pear", "sweet_pepper"}},
    {"household_electrical_devices", {"clock", "keyboard", "lamp", "telephone", "television"}},
    {"household_furniture", {"bed", "chair", "couch", "table", "wardrobe"}},
    {"insects", {"bee", "beetle", "butterfly", "caterpillar", "cockroach"}},
    {"large_carnivores", {"bear", "leopard", "lion", "tiger", "wolf"}},
    {"large_man-made_outdoor_things", {"bridge", "castle", "house", "road", "skyscraper"}},
    {"large_natural_outdoor_scenes", {"cloud", "forest", "mountain", "plain", "sea"}},
    {"large_omnivores_and_herbivores", {"camel", "cattle", "chimpanzee", "elephant", "kangaroo"}},
    {"medium_mammals", {"fox", "porcupine", "possum", "raccoon", "skunk"}},
    {"non-insect_invertebrates", {"crab", "lobster", "snail", "spider", "worm"}},
    {"people", {"baby", "boy", "girl", "man", "woman"}},
    {"reptiles", {"crocodile", "dinosaur", "lizard", "snake", "turtle"}},
    {"small_mammals", {"hamster", "mouse", "rabbit", "shrew", "squirrel"}},
    {"trees", {"maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"}},
    {"vehicles_1", {"bicycle", "bus", "motorcycle", "pickup_truck", "train"}},
    {"vehicles_2", {"lawn_mower", "rocket", "streetcar", "tank", "tractor"}},
};

const std::map<std::string, int64_t>& superclass_of() {
  static const std::map<std::string, int64_t> map = [] {
    std::map<std::string, int64_t> m;
    for (int64_t c = 0; c < 20; ++c) {
      for (const char* fine : kSuperclasses[c].members) m[fine] = c;
    }
    return m;
  }();
  return map;
}

}  // namespace

const std::vector<std::string>& cifar100_fine_names() {
  // The official fine labels are numbered in alphabetical order of their names.
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& kv : superclass_of()) v.push_back(kv.first);
    return v;  // std::map iterates sorted
  }();
  return names;
}

const std::vector<std::string>& cifar100_coarse_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& s : kSuperclasses) v.push_back(s.name);
    return v;
  }();
  return names;
}

std::vector<int64_t> cifar100_coarse_of_fine(const std::vector<std::string>& fine_names) {
  std::vector<int64_t> coarse;
  for (const auto& name : fine_names) {
    auto it = superclass_of().find(name);
    AG_CHECK(it != superclass_of().end(), "'" << name << "' is not a CIFAR-100 class name, so its superclass "
                                              << "is unknown");
    coarse.push_back(it->second);
  }
  return coarse;
}

}  // namespace ag
