// The campaign report (apps/lib/campaign.h): run folders made here by hand, read back,
// grouped over seeds with the right mean and sample standard deviation, runs in progress
// and unreadable folders reported without being counted.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "apps/lib/campaign.h"
#include "apps/lib/metrics_log.h"

using namespace ag::train;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kColumns = {
    "epoch",     "step",      "lr",       "train_loss", "test_loss",     "train_acc",
    "test_top1", "test_top5", "test_map", "seconds",    "images_per_sec"};

// A run folder: config.json for (loss, s, m, seed, ...) and `epochs_done` rows of metrics; the
// last row has the given top-1 and mAP, each epoch took 10 s.
void make_run(const fs::path& dir, const std::string& loss, double s, double m, uint64_t seed, int64_t epochs,
              int64_t epochs_done, double top1, double map, const std::string& precision = "fp32",
              const std::string& data_dir = "", int64_t cutout = 0) {
  fs::create_directories(dir);
  TrainConfig c;
  c.dataset = "cifar100";
  c.model = "resnet20";
  c.loss.kind = loss;
  c.loss.s = s;
  c.loss.m = m;
  c.seed = seed;
  c.epochs = epochs;
  c.precision = precision;
  c.data_dir = data_dir;
  c.cutout = cutout;
  std::ofstream(dir / "config.json") << c.to_json().dump(2);
  for (int64_t e = 1; e <= epochs_done; ++e) {
    const bool last = e == epochs_done;
    append_csv_row(
        (dir / "metrics.csv").string(), kColumns,
        {double(e), 10.0 * e, 0.1, 1.0, 1.0, 0.5, last ? top1 : 0.01, 0.9, last ? map : 0.01, 10, 5000});
  }
}

struct TempRoot {
  fs::path path = fs::temp_directory_path() / ("ag_campaign_" + std::to_string(::getpid()));
  TempRoot() { fs::remove_all(path); }
  ~TempRoot() { fs::remove_all(path); }
};

}  // namespace

TEST_CASE("mean_std: sample standard deviation, n = 1 has none") {
  const MeanStd a = mean_std({60, 62, 64});
  CHECK(a.n == 3);
  CHECK(a.mean == doctest::Approx(62));
  CHECK(a.std == doctest::Approx(2));
  const MeanStd b = mean_std({61.5});
  CHECK(b.mean == doctest::Approx(61.5));
  CHECK(b.std == 0);
  CHECK(mean_std({}).n == 0);
}

TEST_CASE("campaign: seeds grouped per configuration, running and unreadable runs not counted") {
  TempRoot root;
  const fs::path r = root.path;
  make_run(r / "e15/ce/seed1", "ce", 1, 0.1, 1, 15, 15, 0.60, 0.50);
  make_run(r / "e15/ce/seed2", "ce", 1, 0.1, 2, 15, 15, 0.62, 0.54);
  make_run(r / "e15/ce/seed3", "ce", 1, 0.1, 3, 15, 7, 0.30, 0.20);  // still running
  make_run(r / "e15/arc16_m0.1/seed1", "arcface", 16, 0.1, 1, 15, 15, 0.64, 0.61);
  make_run(r / "e15/arc16_m0.3/seed1", "arcface", 16, 0.3, 1, 15, 15, 0.58, 0.57);
  fs::create_directories(r / "broken");
  std::ofstream(r / "broken/config.json") << "{ not json";

  std::vector<std::string> problems;
  const std::vector<CampaignRun> runs = scan_campaign(r.string(), problems);
  REQUIRE(runs.size() == 5);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("broken") != std::string::npos);
  CHECK(runs[0].folder == "e15/arc16_m0.1/seed1");  // sorted by folder
  CHECK(runs[4].folder == "e15/ce/seed3");
  CHECK_FALSE(runs[4].finished);
  CHECK(runs[4].epochs_done == 7);
  CHECK(runs[0].train_seconds == doctest::Approx(150));

  const std::vector<CampaignConfig> configs = group_campaign(runs);
  REQUIRE(configs.size() == 3);
  const CampaignConfig* ce = nullptr;
  for (const CampaignConfig& c : configs)
    if (c.loss.kind == "ce") ce = &c;
  REQUIRE(ce != nullptr);
  CHECK(ce->top1.n == 2);
  CHECK(ce->in_progress == 1);
  CHECK(ce->top1.mean == doctest::Approx(61));
  CHECK(ce->top1.std == doctest::Approx(std::sqrt(2.0)));
  CHECK(ce->map.mean == doctest::Approx(52));

  const std::string md = campaign_markdown(runs, problems, r.string());
  CHECK(md.find("| cross-entropy | 61.00 ± 1.41 / 52.00 ± 2.83 (n=2, 1 running) |") != std::string::npos);
  CHECK(md.find("| ArcFace s=16, m=0.1 | 64.00 / 61.00 (n=1) |") != std::string::npos);
  CHECK(md.find("broken") != std::string::npos);

  const std::vector<MarginSeries> series = campaign_margin_series(runs);
  REQUIRE(series.size() == 1);
  CHECK(series[0].key == "cifar100_e15");
  REQUIRE(series[0].lines.size() == 2);  // ArcFace s=16 over m, and cross-entropy flat
  CHECK(series[0].lines[0].x == std::vector<double>{0.1, 0.3});
  CHECK(series[0].lines[0].y[1] == doctest::Approx(58));
}

TEST_CASE("campaign: a bf16 run is a row of its own and stays out of the margin sweep") {
  TempRoot root;
  const fs::path r = root.path;
  make_run(r / "e15/ce/seed1", "ce", 1, 0.1, 1, 15, 15, 0.60, 0.50);
  make_run(r / "e15/ce_bf16/seed1", "ce", 1, 0.1, 1, 15, 15, 0.58, 0.49, "bf16");
  make_run(r / "e15/arc16_m0.1/seed1", "arcface", 16, 0.1, 1, 15, 15, 0.64, 0.61);
  make_run(r / "e15/arc16_m0.1_bf16/seed1", "arcface", 16, 0.1, 1, 15, 15, 0.20, 0.10, "bf16");
  make_run(r / "e15/arc16_m0.3/seed1", "arcface", 16, 0.3, 1, 15, 15, 0.58, 0.57);
  std::vector<std::string> problems;
  const std::vector<CampaignRun> runs = scan_campaign(r.string(), problems);
  REQUIRE(runs.size() == 5);
  const std::vector<CampaignConfig> configs = group_campaign(runs);
  REQUIRE(configs.size() == 5);
  for (const CampaignConfig& c : configs) CHECK(c.top1.n == 1);
  const std::string md = campaign_markdown(runs, problems, r.string());
  CHECK(md.find("| cross-entropy | 60.00 / 50.00 (n=1) |") != std::string::npos);
  CHECK(md.find("| cross-entropy, bf16 | 58.00 / 49.00 (n=1) |") != std::string::npos);
  const std::vector<MarginSeries> series = campaign_margin_series(runs);
  REQUIRE(series.size() == 1);
  REQUIRE(series[0].lines.size() == 2);
  CHECK(series[0].lines[0].x == std::vector<double>{0.1, 0.3});
  CHECK(series[0].lines[0].y[0] == doctest::Approx(64));  // the fp32 run, not the bf16 one
}

TEST_CASE("campaign: runs on a re-encoded copy of the data are rows of their own") {
  TempRoot root;
  const fs::path r = root.path;
  make_run(r / "e15/ce/seed1", "ce", 1, 0.1, 1, 15, 15, 0.60, 0.50, "fp32", "/data/cifar-100-binary");
  make_run(r / "e15/ce/seed2", "ce", 1, 0.1, 2, 15, 15, 0.62, 0.52, "fp32", "other/root/cifar-100-binary/");
  make_run(r / "e15/ce_jpeg75/seed1", "ce", 1, 0.1, 1, 15, 15, 0.55, 0.45, "fp32", "/data/cifar-100-jpeg75/");
  make_run(r / "e15/arc16_m0/seed1", "arcface", 16, 0.0, 1, 15, 15, 0.61, 0.60, "fp32",
           "/data/cifar-100-binary");
  make_run(r / "e15/arc16_m0.1_jpeg75/seed1", "arcface", 16, 0.1, 1, 15, 15, 0.2, 0.1, "fp32",
           "/data/cifar-100-jpeg75");
  make_run(r / "e15/arc16_m0.3/seed1", "arcface", 16, 0.3, 1, 15, 15, 0.58, 0.57, "fp32",
           "/data/cifar-100-binary");
  std::vector<std::string> problems;
  const std::vector<CampaignRun> runs = scan_campaign(r.string(), problems);
  REQUIRE(runs.size() == 6);
  const std::string md = campaign_markdown(runs, problems, r.string());
  // the usual folder under any root (and with a trailing slash) is one configuration
  CHECK(md.find("| cross-entropy | 61.00 ± 1.41 / 51.00 ± 1.41 (n=2) |") != std::string::npos);
  CHECK(md.find("| cross-entropy, data cifar-100-jpeg75 | 55.00 / 45.00 (n=1) |") != std::string::npos);
  const std::vector<MarginSeries> series = campaign_margin_series(runs);
  REQUIRE(series.size() == 1);
  REQUIRE(series[0].lines.size() == 2);
  CHECK(series[0].lines[0].x == std::vector<double>{0, 0.3});  // the JPEG run's m = 0.1 is not a point
  CHECK(series[0].lines[1].y[0] == doctest::Approx(61));       // cross-entropy's line: the usual data's
}

TEST_CASE("campaign: Cutout runs are rows of their own; a run with no epoch yet shows no figures") {
  TempRoot root;
  const fs::path r = root.path;
  make_run(r / "e100/ce/seed1", "ce", 1, 0.1, 1, 100, 100, 0.88, 0.90, "fp32", "/d/cifar-10-jpeg75");
  make_run(r / "e100/ce_cutout16/seed1", "ce", 1, 0.1, 1, 100, 100, 0.91, 0.93, "fp32", "/d/cifar-10-jpeg75",
           16);
  make_run(r / "e100/arc16_m0.1/seed1", "arcface", 16, 0.1, 1, 100, 100, 0.87, 0.89);
  make_run(r / "e100/arc16_m0.3/seed1", "arcface", 16, 0.3, 1, 100, 100, 0.86, 0.88);
  make_run(r / "e100/arc16_m0.1_cutout16/seed1", "arcface", 16, 0.1, 1, 100, 0, 0, 0, "fp32", "", 16);
  std::vector<std::string> problems;
  const std::vector<CampaignRun> runs = scan_campaign(r.string(), problems);
  REQUIRE(runs.size() == 5);
  const std::vector<CampaignConfig> configs = group_campaign(runs);
  REQUIRE(configs.size() == 5);
  const std::string md = campaign_markdown(runs, problems, r.string());
  CHECK(md.find("| cross-entropy, data cifar-10-jpeg75 | 88.00 / 90.00 (n=1) |") != std::string::npos);
  CHECK(md.find("| cross-entropy, data cifar-10-jpeg75, cutout 16 | 91.00 / 93.00 (n=1) |") !=
        std::string::npos);
  CHECK(md.find("| ArcFace s=16, m=0.1, cutout 16 | - / - (n=0, 1 running) |") != std::string::npos);
  CHECK(md.find("| e100/arc16_m0.1_cutout16/seed1 | 0/100 running | - | - | - | - | - | - |") !=
        std::string::npos);
  const std::vector<MarginSeries> series = campaign_margin_series(runs);
  REQUIRE(series.size() == 1);
  REQUIRE(series[0].lines.size() == 1);  // ArcFace s=16 over m; the Cutout run is not a point
  CHECK(series[0].lines[0].x == std::vector<double>{0.1, 0.3});
}

TEST_CASE("campaign: a missing root is one clear error") {
  std::vector<std::string> problems;
  CHECK_THROWS_WITH_AS(scan_campaign("/nonexistent/campaign", problems),
                       doctest::Contains("/nonexistent/campaign is not a folder"), ag::Error);
}
