// Transforms against hand-computed results on tiny images.
#include "data/transforms.h"
#include "test_data_util.h"

using namespace ag;
using namespace ag_test;

namespace {

// One channel, 3x3: pixels 10, 20, ..., 90 row-major.
const uint8_t kImage[9] = {10, 20, 30, 40, 50, 60, 70, 80, 90};

std::vector<float> run(const Transform& t, const AugmentParams& p, const uint8_t* src, int64_t c, int64_t h,
                       int64_t w) {
  std::vector<float> out(static_cast<size_t>(c * h * w), -999.0f);
  apply_transform(t, p, src, c, h, w, out.data());
  return out;
}

void check_close(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    INFO("element " << k);
    CHECK(got[k] == doctest::Approx(want[k]).epsilon(1e-6));
  }
}

}  // namespace

TEST_CASE("normalisation: (pixel/255 - mean) / std per channel") {
  const uint8_t two_channels[2] = {51, 204};  // 1x1 image, 2 channels: 0.2 and 0.8
  Transform t = eval_transform({{0.5f, 0.25f}, {0.1f, 0.5f}});
  CHECK_FALSE(t.is_random());
  check_close(run(t, {}, two_channels, 2, 1, 1), {(0.2f - 0.5f) / 0.1f, (0.8f - 0.25f) / 0.5f});
  // No stats: plain pixel/255.
  check_close(run(Transform{}, {}, two_channels, 2, 1, 1), {0.2f, 0.8f});
  Transform bad = eval_transform({{0.5f}, {0.1f}});
  CHECK(contains(error_of([&] { run(bad, {}, two_channels, 2, 1, 1); }), "2 channels"));
}

TEST_CASE("random crop: zero padding then a window at the drawn offset") {
  Transform t;
  t.pad = 1;
  AugmentParams p;
  p.crop_y = 0;  // window starts in the padding: shifts the image down and right by one
  p.crop_x = 0;
  check_close(run(t, p, kImage, 1, 3, 3), {0, 0, 0, 0, 10 / 255.f, 20 / 255.f, 0, 40 / 255.f, 50 / 255.f});
  p.crop_y = 2;  // up and left by one
  p.crop_x = 1;  // no horizontal shift
  check_close(run(t, p, kImage, 1, 3, 3),
              {40 / 255.f, 50 / 255.f, 60 / 255.f, 70 / 255.f, 80 / 255.f, 90 / 255.f, 0, 0, 0});
  // With normalisation, padding is a black pixel: (0 - mean) / std.
  Transform n = t;
  n.stats = {{0.5f}, {0.25f}};
  p.crop_y = 1;
  p.crop_x = 2;
  std::vector<float> out = run(n, p, kImage, 1, 3, 3);
  CHECK(out[2] == doctest::Approx(-2.0f));
  CHECK(out[0] == doctest::Approx((20 / 255.f - 0.5f) / 0.25f));
}

TEST_CASE("horizontal flip, after the crop") {
  Transform t;
  AugmentParams p;
  p.flip = true;
  check_close(run(t, p, kImage, 1, 3, 3), {30 / 255.f, 20 / 255.f, 10 / 255.f, 60 / 255.f, 50 / 255.f,
                                           40 / 255.f, 90 / 255.f, 80 / 255.f, 70 / 255.f});
  t.pad = 1;
  p.crop_y = 1;
  p.crop_x = 0;  // crop shifts right by one: rows become [0, a, b]; the flip gives [b, a, 0]
  check_close(run(t, p, kImage, 1, 3, 3),
              {20 / 255.f, 10 / 255.f, 0, 50 / 255.f, 40 / 255.f, 0, 80 / 255.f, 70 / 255.f, 0});
}

TEST_CASE("mirror_transform: every image flipped, nothing else, whatever the seed") {
  const Transform t = mirror_transform({{0.5f}, {0.25f}});
  Generator gen(7);
  for (int k = 0; k < 200; ++k) {
    const AugmentParams p = draw_augment(t, 3, 3, gen);
    REQUIRE(p.flip);
    REQUIRE(p.crop_y == 0);
    REQUIRE(p.crop_x == 0);
    REQUIRE(p.cutout_y == -1);
  }
  const AugmentParams p = draw_augment(t, 3, 3, gen);
  const std::vector<float> plain = run(eval_transform(t.stats), {}, kImage, 1, 3, 3);
  const std::vector<float> mirrored = run(t, p, kImage, 1, 3, 3);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 3; ++x)
      CHECK(mirrored[static_cast<size_t>(y * 3 + x)] == plain[static_cast<size_t>(y * 3 + 2 - x)]);
}

TEST_CASE("Cutout: a square set to zero after normalisation, clipped at the border") {
  Transform t;
  t.cutout = 2;
  t.stats = {{0.0f, 0.0f}, {1.0f, 1.0f}};
  uint8_t two[18];
  for (int k = 0; k < 18; ++k) two[k] = 255;
  AugmentParams p;
  p.cutout_y = 0;  // centre at the corner: rows [-1, 1) and columns [-1, 1) -> only (0,0)
  p.cutout_x = 0;
  std::vector<float> out = run(t, p, two, 2, 3, 3);
  check_close(out, {0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1});
  p.cutout_y = 2;  // rows [1, 3), columns [0, 2)
  p.cutout_x = 1;
  check_close(run(t, p, two, 2, 3, 3), {1, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 1});
}

TEST_CASE("draw_augment: ranges, seeded, eval draws nothing random") {
  Transform t = train_transform({}, 4, 8);
  Generator a(42), b(42);
  int flips = 0;
  for (int k = 0; k < 1000; ++k) {
    AugmentParams p = draw_augment(t, 32, 32, a);
    AugmentParams q = draw_augment(t, 32, 32, b);
    CHECK(p.crop_y == q.crop_y);
    CHECK(p.cutout_x == q.cutout_x);
    CHECK((p.crop_y >= 0 && p.crop_y <= 8 && p.crop_x >= 0 && p.crop_x <= 8));
    CHECK((p.cutout_y >= 0 && p.cutout_y < 32));
    flips += p.flip;
  }
  CHECK(flips > 400);
  CHECK(flips < 600);
  Transform no_cutout = train_transform({}, 4, 0);
  Generator g(1);
  CHECK(draw_augment(no_cutout, 32, 32, g).cutout_y == -1);
}

TEST_CASE("channel statistics over a dataset") {
  Dataset d(2, 1, 2, {"only"});
  const uint8_t x[4] = {0, 255, 51, 51};  // channel 0: {0, 255}; channel 1: {51, 51}
  const uint8_t y[4] = {255, 0, 102, 102};
  d.add(x, 0);
  d.add(y, 0);
  ChannelStats s = compute_channel_stats(d);
  CHECK(s.mean[0] == doctest::Approx(0.5));
  CHECK(s.std[0] == doctest::Approx(0.5));
  CHECK(s.mean[1] == doctest::Approx(0.3));
  CHECK(s.std[1] == doctest::Approx(0.1));
}
