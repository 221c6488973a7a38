// Run outputs: metrics.jsonl / metrics.csv, the progress display in both modes, and the
// gnuplot PNG plots (skipped with a message when gnuplot is absent).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "apps/lib/metrics_log.h"
#include "apps/lib/plots.h"
#include "apps/lib/progress.h"
#include "test_data_util.h"

using namespace ag;
using namespace ag::train;
using ag_test::TempDir;

namespace {
std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}
bool is_png(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char sig[8] = {};
  in.read(sig, 8);
  return in.good() && std::string(sig, 8) == std::string("\x89PNG\r\n\x1a\n", 8);
}
}  // namespace

TEST_CASE("metrics log: JSON lines and CSV with one header") {
  TempDir dir;
  const std::string jsonl = dir.file("metrics.jsonl"), csv = dir.file("metrics.csv");
  append_jsonl(jsonl, {{"epoch", 1}, {"per_class", {0.5, 0.25}}});
  append_jsonl(jsonl, {{"epoch", 2}});
  CHECK(read_text(jsonl) == "{\"epoch\":1,\"per_class\":[0.5,0.25]}\n{\"epoch\":2}\n");
  CHECK_THROWS_WITH_AS(append_jsonl(jsonl, nlohmann::json::array()), doctest::Contains("JSON object"), Error);

  append_csv_row(csv, {"epoch", "train_loss", "test_top1"}, {1, 2.5, 0.125});
  append_csv_row(csv, {"epoch", "train_loss", "test_top1"}, {2, 1.0 / 3, NAN});
  CHECK(read_text(csv) == "epoch,train_loss,test_top1\n1,2.5,0.125\n2,0.3333333333,nan\n");
  CHECK_THROWS_WITH_AS(append_csv_row(csv, {"epoch", "loss"}, {3, 1}), doctest::Contains("has columns"),
                       Error);
  CHECK_THROWS_WITH_AS(append_csv_row(csv, {"epoch"}, {3, 1}), doctest::Contains("1 columns but 2 values"),
                       Error);

  MetricsTable t = read_metrics_csv(csv);
  CHECK(t.columns == std::vector<std::string>{"epoch", "train_loss", "test_top1"});
  REQUIRE(t.rows.size() == 2);
  CHECK(t.column("train_loss")[0] == 2.5);
  CHECK(std::isnan(t.column("test_top1")[1]));
  CHECK(t.has("epoch"));
  CHECK_THROWS_WITH_AS(t.column("map"), doctest::Contains("no column 'map'"), Error);
  ag_test::write_text(dir.file("bad.csv"), "epoch,loss\n1,x\n");
  CHECK_THROWS_WITH_AS(read_metrics_csv(dir.file("bad.csv")),
                       doctest::Contains("line 2: 'x' is not a number"), Error);
}

TEST_CASE("progress: duration format") {
  CHECK(format_duration(0) == "0:00");
  CHECK(format_duration(42.4) == "0:42");
  CHECK(format_duration(725) == "12:05");
  CHECK(format_duration(3723) == "1:02:03");
  CHECK(format_duration(NAN) == "--:--");
}

TEST_CASE("progress: plain lines when not a terminal") {
  std::ostringstream out;
  double now = 100.0;
  {
    ProgressBar bar("epoch 1/2 train", 10, {.out = &out, .lines_per_phase = 5, .clock = [&] { return now; }});
    CHECK(!bar.is_terminal());  // an ostringstream is never a terminal
    for (int i = 1; i <= 10; ++i) {
      now += 0.5;  // 0.5 s per step of 32 images: 64 img/s
      bar.update(i, 32 * i, 1.0 / i, 0.1 * i);
    }
  }
  const std::string text = out.str();
  CHECK(text.find('\r') == std::string::npos);
  CHECK(std::count(text.begin(), text.end(), '\n') == 5);  // steps 2, 4, 6, 8, 10
  CHECK(text.find("epoch 1/2 train 2/10 loss 0.5000 acc 20.00% 64 img/s ETA 0:04\n") == 0);
  CHECK(text.find("10/10 loss 0.1000 acc 100.00% 64 img/s in 0:05\n") != std::string::npos);
}

TEST_CASE("progress: a resumed phase counts only the steps done since the resume") {
  std::ostringstream out;
  double now = 0.0;
  ProgressBar bar("epoch 3/4", 10,
                  {.mode = ProgressOptions::Mode::lines, .out = &out, .lines_per_phase = 10, .clock = [&] {
                     return now;
                   }});
  bar.resume_at(6, 6 * 32);  // 6 of 10 steps done before the checkpoint
  now += 2.0;                // one step of 32 images in 2 s: 16 img/s, 3 steps left at 2 s each
  bar.update(7, 7 * 32, 0.5, NAN);
  CHECK(out.str() == "epoch 3/4 7/10 loss 0.5000 16 img/s ETA 0:06\n");
  CHECK_THROWS_WITH(bar.resume_at(11, 0), doctest::Contains("resume point 11 steps"));
}

TEST_CASE("progress: redrawn in place on a terminal") {
  std::ostringstream out;
  double now = 0.0;
  ProgressBar bar("eval", 4,
                  {.mode = ProgressOptions::Mode::terminal, .out = &out, .clock = [&] { return now; }});
  for (int i = 1; i <= 4; ++i) {
    now += 1.0;
    bar.update(i, 10 * i, 0.5, NAN);
  }
  bar.finish();
  const std::string text = out.str();
  CHECK(std::count(text.begin(), text.end(), '\r') == 4);
  CHECK(text.find("\reval [#####...............] 1/4 loss 0.5000 10 img/s ETA 0:03\033[K") == 0);
  CHECK(text.find("[####################] 4/4") != std::string::npos);
  CHECK(text.find("acc") == std::string::npos);  // NaN accuracy is left out
  CHECK(text.back() == '\n');
}

TEST_CASE("plots: each kind writes a PNG") {
  if (!gnuplot_available()) {
    MESSAGE("skipped: gnuplot (with a png or pngcairo terminal) is not installed");
    return;
  }
  TempDir dir;
  MetricsTable table{
      {"epoch", "train_loss", "test_loss", "train_acc", "test_top1", "test_map"},
      {{1, 2.0, 2.1, 0.3, 0.28, 0.2}, {2, 1.5, 1.7, 0.5, 0.45, 0.4}, {3, 1.2, 1.5, 0.6, 0.52, 0.5}}};
  plot_training_curves(dir.file("curves.png"), table, "it's a test");
  CHECK(is_png(dir.file("curves.png")));

  plot_confusion_matrix(dir.file("confusion.png"), {{5, 1, 0}, {2, 3, 1}, {0, 0, 6}},
                        {"cat", "dog_2", "bird"}, "confusion");
  CHECK(is_png(dir.file("confusion.png")));

  plot_accuracy_vs_m(dir.file("m.png"),
                     {{"resnet20", {0.1, 0.3, 0.5}, {80, 82, 81}}, {"mnv2", {0.1, 0.3}, {70, 71}}},
                     "accuracy vs m");
  CHECK(is_png(dir.file("m.png")));

  EmbeddingPanel panel{"softmax",
                       Tensor::from_vector({1, 0.1, -0.2, 2, 0.5, -0.5}, {3, 2}),
                       Tensor::from_labels({0, 1, 2}),
                       Tensor::from_vector({1, 0, 0, 1, -1, -1}, {3, 2}),
                       {"a", "b", "c"}};
  EmbeddingPanel arc = panel;
  arc.title = "ArcFace";
  plot_embeddings(dir.file("embed.png"), {panel, arc});
  CHECK(is_png(dir.file("embed.png")));

  // Nothing but the four images is left in the folder.
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) files += e.is_regular_file();
  CHECK(files == 4);
}

TEST_CASE("plots: bad input and failures give clear errors") {
  TempDir dir;
  CHECK_THROWS_WITH_AS(plot_confusion_matrix(dir.file("c.png"), {{1, 0}, {0, 1}}, {"a"}, "t"),
                       doctest::Contains("1 class names for 2 classes"), Error);
  CHECK_THROWS_WITH_AS(plot_training_curves(dir.file("c.png"), MetricsTable{{"epoch"}, {{1}}}, "t"),
                       doctest::Contains("no loss or accuracy columns"), Error);
  CHECK_THROWS_WITH_AS(plot_lines(dir.file("c.png"), {{"s", {1, 2}, {1}}}, "t", "x", "y"),
                       doctest::Contains("series 's' has 2 x and 1 y values"), Error);
  if (!gnuplot_available()) return;
  CHECK_THROWS_WITH_AS(plot_lines(dir.file("no/such/dir/c.png"), {{"s", {1}, {1}}}, "t", "x", "y"),
                       doctest::Contains("does not exist"), Error);
}
