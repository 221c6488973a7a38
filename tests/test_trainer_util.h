// Helpers for the training-loop tests: a tiny learnable image set the test makes itself
// (class k is brighter in its own quadrant), a tiny configuration, and exact comparisons of
// run folders and modules.
#pragma once

#include <doctest/doctest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "apps/lib/checkpoint.h"
#include "apps/lib/trainer.h"
#include "core/random.h"
#include "core/serialize/safetensors.h"
#include "data/dataset.h"
#include "test_data_util.h"

namespace ag_test {

// n images of 3 x size x size in 4 classes (labels cycle 0..3), each a noisy grey
// background with the class's quadrant brighter, so a small CNN learns them within a few
// epochs.
inline std::shared_ptr<const ag::Dataset> quadrant_images(int64_t n, uint64_t seed, int64_t size = 8) {
  ag::Dataset d(3, size, size, {"q0", "q1", "q2", "q3"});
  ag::Generator gen(seed);
  std::vector<uint8_t> img(static_cast<size_t>(3 * size * size));
  const int64_t half = size / 2;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = i % 4;
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < size; ++y)
        for (int64_t x = 0; x < size; ++x) {
          const bool inside = (y / half) * 2 + (x / half) == label;
          const double v = (inside ? 170.0 : 70.0) + gen.uniform(-50.0, 50.0);
          img[static_cast<size_t>((c * size + y) * size + x)] = static_cast<uint8_t>(v);
        }
    d.add(img.data(), label);
  }
  d.set_source("quadrant_images");
  return std::make_shared<const ag::Dataset>(std::move(d));
}

inline ag::train::TrainConfig tiny_config(const std::string& out, const std::string& loss = "ce") {
  ag::train::TrainConfig c;
  c.dataset = "folder";
  c.model = "convnet:width=4";
  c.loss.kind = loss;
  c.loss.s = 8;
  c.loss.m = 0.2;
  c.epochs = 2;
  c.batch_size = 8;
  c.lr = 0.05;
  c.augment = false;  // a flip would swap the quadrants that tell the classes apart
  c.workers = 0;
  c.eval_batch_size = 16;
  c.progress = "off";
  c.plots = false;
  c.out = out;
  return c;
}

struct TinyData {
  std::shared_ptr<const ag::Dataset> train = quadrant_images(48, 1), test = quadrant_images(24, 2);
  TinyData() = default;
  TinyData(int64_t n_train, int64_t n_test, int64_t size)
      : train(quadrant_images(n_train, 1, size)), test(quadrant_images(n_test, 2, size)) {}
};

inline ag::train::TrainerHooks tiny_hooks(const TinyData& data, std::ostream* log) {
  ag::train::TrainerHooks h;
  h.train_set = data.train;
  h.test_set = data.test;
  h.log = log;
  return h;
}

// metrics.jsonl without the wall-time fields, one JSON object per epoch.
inline std::vector<nlohmann::json> read_metrics(const std::string& dir) {
  std::ifstream in(dir + "/metrics.jsonl");
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line);
    j.erase("seconds");
    j.erase("images_per_sec");
    out.push_back(j);
  }
  return out;
}

// Every value of every tensor identical (bit for bit up to the sign of zero).
inline void check_same_tensors(const std::vector<std::pair<std::string, ag::Tensor>>& a,
                               const std::vector<std::pair<std::string, ag::Tensor>>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("tensor " << a[i].first);
    CHECK(a[i].first == b[i].first);
    const std::vector<double> x = a[i].second.to_vector(), y = b[i].second.to_vector();
    REQUIRE(x.size() == y.size());
    size_t differ = 0;
    for (size_t k = 0; k < x.size(); ++k) differ += !(x[k] == y[k]);
    CHECK(differ == 0);
  }
}

// The checkpoint in dir rewritten with its state JSON changed by edit (the tensors kept):
// for checkpoints that are well-formed files with implausible contents.
template <class Edit>
void edit_checkpoint_state(const std::string& dir, Edit&& edit) {
  const std::string path = dir + "/" + ag::train::kCheckpointFile;
  ag::serialize::SafetensorsFile file = ag::serialize::load_safetensors(path);
  nlohmann::json state = nlohmann::json::parse(file.metadata.at("arcgrad.checkpoint"));
  edit(state);
  file.metadata["arcgrad.checkpoint"] = state.dump();
  ag::serialize::save_safetensors(path, file.tensors, file.metadata);
}

}  // namespace ag_test
