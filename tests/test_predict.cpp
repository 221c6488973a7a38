// The predict app's library (apps/lib/predict.h) and the resizing it relies on
// (data/resize.h): a tiny run trained here, its images written as PNG files at their own
// size and at twice it, predicted back with the same scores as the network gives the
// dataset's own pixels; unreadable files reported by name without stopping the others.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "apps/lib/predict.h"
#include "core/autograd.h"
#include "core/ops.h"
#include "data/resize.h"
#include "test_trainer_util.h"

using namespace ag;
using namespace ag::train;
namespace fs = std::filesystem;

namespace {

DecodedImage make_image(int channels, int height, int width, uint8_t (*pixel)(int c, int y, int x)) {
  DecodedImage img;
  img.channels = channels;
  img.height = height;
  img.width = width;
  for (int c = 0; c < channels; ++c)
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) img.chw.push_back(pixel(c, y, x));
  return img;
}

// Each pixel repeated factor x factor times.
DecodedImage upscale_nearest(const DecodedImage& img, int factor) {
  DecodedImage out;
  out.channels = img.channels;
  out.height = img.height * factor;
  out.width = img.width * factor;
  for (int c = 0; c < out.channels; ++c)
    for (int y = 0; y < out.height; ++y)
      for (int x = 0; x < out.width; ++x)
        out.chw.push_back(
            img.chw[(static_cast<size_t>(c) * img.height + y / factor) * img.width + x / factor]);
  return out;
}

void write_png(const fs::path& path, const DecodedImage& img) {
  const std::vector<uint8_t> bytes =
      encode_image(img.chw.data(), img.channels, img.height, img.width, ImageFormat::png);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("ag_predict_" + std::to_string(::getpid()));
  TempDir() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

}  // namespace

TEST_CASE("resize: constant stays constant, a 2x nearest upscale shrinks back exactly, crops are centred") {
  const DecodedImage grey = make_image(3, 10, 14, [](int, int, int) -> uint8_t { return 77; });
  const DecodedImage small = resize_image(grey, 4, 5);
  CHECK(small.height == 4);
  CHECK(small.width == 5);
  for (uint8_t v : small.chw) CHECK(v == 77);

  const DecodedImage ramp =
      make_image(1, 6, 6, [](int, int y, int x) -> uint8_t { return uint8_t(10 * y + 3 * x); });
  CHECK(resize_image(upscale_nearest(ramp, 2), 6, 6).chw == ramp.chw);
  CHECK(resize_image(ramp, 6, 6).chw == ramp.chw);

  // 4 x 8, columns numbered: the centred 4 x 4 window keeps columns 2..5.
  const DecodedImage wide = make_image(1, 4, 8, [](int, int, int x) -> uint8_t { return uint8_t(x * 20); });
  const DecodedImage crop = resize_center_crop(wide, 4, 4);
  REQUIRE(crop.chw.size() == 16);
  CHECK(crop.chw[0] == 40);
  CHECK(crop.chw[3] == 100);
  CHECK_THROWS_AS(resize_image(wide, 0, 4), Error);
}

TEST_CASE("predict: PNG files give the network's own scores; bad files are named, others go on") {
  TempDir dir;
  const ag_test::TinyData data;
  std::ostringstream log;
  for (const std::string loss : {"ce", "arcface"}) {
    CAPTURE(loss);
    const std::string run_dir = (dir.path / ("run_" + loss)).string();
    {
      ag::train::Trainer trainer(ag_test::tiny_config(run_dir, loss), ag_test::tiny_hooks(data, &log));
      trainer.run();
    }
    TrainedRun run = load_trained_run(run_dir, Device::cpu());
    CHECK(score_kind(run) == (loss == "ce" ? "probability" : "cosine"));

    // Four test images as files: two at the model's size, two at twice it.
    const fs::path images = dir.path / ("images_" + loss);
    fs::create_directories(images / "big");
    std::vector<std::string> files;
    for (int64_t i = 0; i < 4; ++i) {
      DecodedImage img;
      img.channels = 3;
      img.height = img.width = 8;
      const uint8_t* px = data.test->image(i);
      img.chw.assign(px, px + 3 * 8 * 8);
      const fs::path p = i < 2 ? images / ("img" + std::to_string(i) + ".png")
                               : images / "big" / ("img" + std::to_string(i) + ".png");
      write_png(p, i < 2 ? img : upscale_nearest(img, 2));
      files.push_back(p.string());
    }
    std::ofstream(images / "broken.png") << "not a png";

    const std::vector<std::string> found = expand_image_paths({images.string()});
    REQUIRE(found.size() == 5);  // sorted: big/img2, big/img3, broken, img0, img1
    CHECK(found[2].find("broken.png") != std::string::npos);

    const std::vector<Prediction> preds = predict_images(run, found, 4, Device::cpu(), 2);
    REQUIRE(preds.size() == 5);
    CHECK(preds[2].top.empty());
    CHECK(preds[2].error.find("broken.png") != std::string::npos);

    // The network's scores on the dataset's own pixels, normalised the run's way.
    Tensor x = Tensor::empty({4, 3, 8, 8});
    for (int64_t i = 0; i < 4; ++i)
      apply_transform(eval_transform(run.stats), AugmentParams{}, data.test->image(i), 3, 8, 8,
                      x.data<float>() + i * 3 * 64);
    Tensor expected;
    {
      NoGradGuard g;
      run.net->eval();
      expected = (*run.net)(x);
      if (loss == "ce") expected = softmax(expected, 1);
    }
    const int order[4] = {3, 4, 0, 1};  // preds index of test image i
    for (int64_t i = 0; i < 4; ++i) {
      const Prediction& p = preds[order[i]];
      REQUIRE(p.top.size() == 4);
      double total = 0;
      for (size_t j = 0; j < 4; ++j) {
        CHECK(p.top[j].score ==
              doctest::Approx(expected.data<float>()[i * 4 + p.top[j].label]).epsilon(1e-5));
        if (j > 0) CHECK(p.top[j].score <= p.top[j - 1].score);
        total += p.top[j].score;
      }
      if (loss == "ce") CHECK(total == doctest::Approx(1.0).epsilon(1e-5));
    }
    const std::string text = format_predictions(preds, run.class_names, score_kind(run));
    CHECK(text.find("img0.png") != std::string::npos);
    CHECK(text.find("broken.png") == std::string::npos);
  }
  CHECK_THROWS_WITH_AS(expand_image_paths({(dir.path / "missing.png").string()}),
                       doctest::Contains("missing.png"), Error);
}

TEST_CASE("predict: a run trained with a border gets the same border round each file's image") {
  TempDir dir;
  const ag_test::TinyData data;
  std::ostringstream log;
  const std::string run_dir = (dir.path / "run").string();
  {
    ag::train::TrainConfig config = ag_test::tiny_config(run_dir);
    config.border = 1;
    ag::train::Trainer trainer(config, ag_test::tiny_hooks(data, &log));
    trainer.run();
  }
  TrainedRun run = load_trained_run(run_dir, Device::cpu());
  CHECK(run.image_shape == Shape{3, 10, 10});  // the 8x8 images inside a 1-pixel border
  DecodedImage img;
  img.channels = 3;
  img.height = img.width = 8;
  img.chw.assign(data.test->image(0), data.test->image(0) + 3 * 8 * 8);
  write_png(dir.path / "img.png", img);
  const std::vector<Prediction> preds =
      predict_images(run, {(dir.path / "img.png").string()}, 4, Device::cpu(), 1);
  REQUIRE(preds.size() == 1);
  REQUIRE(preds[0].top.size() == 4);

  const Dataset bordered = data.test->with_border(1);
  Tensor x = Tensor::empty({1, 3, 10, 10});
  apply_transform(eval_transform(run.stats), AugmentParams{}, bordered.image(0), 3, 10, 10, x.data<float>());
  Tensor expected;
  {
    NoGradGuard g;
    run.net->eval();
    expected = softmax((*run.net)(x), 1);
  }
  for (const auto& t : preds[0].top)
    CHECK(t.score == doctest::Approx(expected.data<float>()[t.label]).epsilon(1e-5));
}
