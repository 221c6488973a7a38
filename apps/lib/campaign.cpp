// Campaign results from run folders; see campaign.h.
#include "apps/lib/campaign.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "apps/lib/metrics_log.h"
#include "apps/lib/sweep.h"

namespace ag::train {

namespace fs = std::filesystem;

namespace {

nlohmann::json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  AG_CHECK(in, "cannot open " << path.string());
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    AG_FAIL(path.string() << " is not valid JSON: " << e.what());
  }
  return nullptr;
}

// campaign.log lines look like "2026-12-02T15:10:00Z wall_s=812 status=0 load=1.95 1.80 1.7 resumed=no".
void read_campaign_log(const fs::path& path, CampaignRun& run) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const size_t wall = line.find("wall_s="), load = line.find("load=");
    if (wall != std::string::npos) run.wall_seconds += std::atof(line.c_str() + wall + 7);
    if (load != std::string::npos) run.max_load = std::max(run.max_load, std::atof(line.c_str() + load + 5));
  }
}

CampaignRun read_run(const fs::path& dir, const fs::path& root) {
  CampaignRun run;
  run.folder = fs::relative(dir, root).generic_string();
  run.config = TrainConfig::from_json(read_json_file(dir / "config.json"));
  run.diverged = fs::exists(dir / "campaign.diverged");
  if (fs::exists(dir / "metrics.csv")) {
    const MetricsTable table = read_metrics_csv((dir / "metrics.csv").string());
    if (!table.rows.empty()) {
      run.epochs_done = static_cast<int64_t>(table.column("epoch").back());
      run.top1 = table.column("test_top1").back();
      run.top5 = table.column("test_top5").back();
      run.map = table.column("test_map").back();
      for (double s : table.column("seconds")) run.train_seconds += s;
    }
  }
  run.finished = !run.diverged && run.epochs_done >= run.config.epochs;
  if (fs::exists(dir / "campaign.log")) read_campaign_log(dir / "campaign.log", run);
  return run;
}

std::string fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string duration(double seconds) {
  const long s = std::lround(seconds);
  if (s < 3600) return std::to_string(s / 60) + " min " + std::to_string(s % 60) + " s";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld h %02ld min", s / 3600, (s % 3600) / 60);
  return buf;
}

std::string mean_std_text(const MeanStd& v) {
  if (v.n == 0) return "-";
  if (v.n == 1) return fixed(v.mean, 2);
  return fixed(v.mean, 2) + " ± " + fixed(v.std, 2);
}

// A section of the report: one dataset trained for one number of epochs.
std::string section_key(const std::string& dataset, int64_t epochs) {
  return dataset + "_e" + std::to_string(epochs);
}

// The data folder's name where it is not the dataset's usual one (a re-encoded copy, say),
// else "": such runs answer another question and get rows of their own.
std::string data_variant_of(const TrainConfig& c) {
  fs::path dir = fs::path(c.data_dir).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();  // "dir/" names dir
  const std::string name = dir.filename().string();
  return name == fs::path(default_data_dir(c.dataset)).filename().string() ? "" : name;
}

// What sets a run's recipe apart from the campaign's usual one, as the end of its table
// row's label (", bf16, data cifar-100-jpeg75, cutout 16"); "" for the usual recipe.
std::string recipe_variant_text(const TrainConfig& c) {
  std::string text;
  if (c.precision != "fp32") text += ", " + c.precision;
  const std::string data = data_variant_of(c);
  if (!data.empty()) text += ", data " + data;
  if (c.cutout > 0) text += ", cutout " + std::to_string(c.cutout);
  return text;
}

template <typename T>
void add_unique(std::vector<T>& list, const T& value) {
  if (std::find(list.begin(), list.end(), value) == list.end()) list.push_back(value);
}

}  // namespace

std::vector<CampaignRun> scan_campaign(const std::string& root, std::vector<std::string>& problems) {
  AG_CHECK(fs::is_directory(root), "campaign root " << root << " is not a folder");
  std::vector<fs::path> folders;
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file() && e.path().filename() == "config.json")
      folders.push_back(e.path().parent_path());
  std::sort(folders.begin(), folders.end());
  std::vector<CampaignRun> runs;
  for (const fs::path& dir : folders) {
    try {
      runs.push_back(read_run(dir, root));
    } catch (const std::exception& e) {
      problems.push_back(fs::relative(dir, root).generic_string() + ": " + e.what());
    }
  }
  return runs;
}

MeanStd mean_std(const std::vector<double>& values) {
  MeanStd r;
  r.n = static_cast<int>(values.size());
  if (r.n == 0) return r;
  for (double v : values) r.mean += v;
  r.mean /= r.n;
  if (r.n > 1) {
    double ss = 0;
    for (double v : values) ss += (v - r.mean) * (v - r.mean);
    r.std = std::sqrt(ss / (r.n - 1));
  }
  return r;
}

std::vector<CampaignConfig> group_campaign(const std::vector<CampaignRun>& runs) {
  std::vector<CampaignConfig> configs;
  std::map<std::string, std::vector<double>> top1, map;
  auto key_of = [](const CampaignRun& r) {  // the recipe's variant too: a bf16 run is its own row
    return section_key(r.config.dataset, r.config.epochs) + "|" + r.config.model + "|" +
           r.config.loss.describe() + recipe_variant_text(r.config);
  };
  std::map<std::string, size_t> index;
  for (const CampaignRun& r : runs) {
    const std::string key = key_of(r);
    if (!index.count(key)) {
      index[key] = configs.size();
      CampaignConfig c;
      c.dataset = r.config.dataset;
      c.model = r.config.model;
      c.epochs = r.config.epochs;
      c.loss = r.config.loss;
      c.variant = recipe_variant_text(r.config);
      c.label = loss_label(r.config.loss) + c.variant;
      configs.push_back(c);
    }
    CampaignConfig& c = configs[index[key]];
    if (r.diverged) {
      ++c.diverged;
    } else if (!r.finished) {
      ++c.in_progress;
    } else {
      top1[key].push_back(100 * r.top1);
      map[key].push_back(100 * r.map);
      c.seeds.push_back(r.config.seed);
    }
  }
  for (const auto& [key, i] : index) {
    configs[i].top1 = mean_std(top1[key]);
    configs[i].map = mean_std(map[key]);
  }
  return configs;
}

std::string campaign_markdown(const std::vector<CampaignRun>& runs, const std::vector<std::string>& problems,
                              const std::string& root) {
  const std::vector<CampaignConfig> configs = group_campaign(runs);
  int finished = 0, diverged = 0;
  for (const CampaignRun& r : runs) finished += r.finished, diverged += r.diverged;
  std::ostringstream os;
  os << "# Campaign results\n\nFrom the run folders under `" << root << "`: " << runs.size() << " runs, "
     << finished << " finished, " << diverged << " diverged, " << runs.size() - finished - diverged
     << " in progress. Cells: test top-1 / mAP (%) after the last epoch, mean ± sample standard "
        "deviation over the finished seeds (n); runs in progress are not counted.\n";
  std::vector<std::string> sections;
  for (const CampaignConfig& c : configs) add_unique(sections, section_key(c.dataset, c.epochs));
  for (const std::string& section : sections) {
    std::vector<std::string> models, rows;
    std::map<std::pair<std::string, std::string>, const CampaignConfig*> cell;
    for (const CampaignConfig& c : configs) {
      if (section_key(c.dataset, c.epochs) != section) continue;
      add_unique(models, c.model);
      add_unique(rows, c.label);
      cell[{c.label, c.model}] = &c;
    }
    const CampaignConfig& first = *cell.begin()->second;
    os << "\n## " << first.dataset << ", " << first.epochs << " epochs\n\n" << loss_table_header(models);
    for (const std::string& row : rows) {
      os << "| " << row << " |";
      for (const std::string& m : models) {
        auto it = cell.find({row, m});
        if (it == cell.end()) {
          os << " |";
          continue;
        }
        const CampaignConfig& c = *it->second;
        os << " " << mean_std_text(c.top1) << " / " << mean_std_text(c.map) << " (n=" << c.top1.n;
        if (c.in_progress > 0) os << ", " << c.in_progress << " running";
        if (c.diverged > 0) os << ", " << c.diverged << " diverged";
        os << ") |";
      }
      os << "\n";
    }
  }
  os << "\n## Runs\n\n| run | epochs | top-1 | top-5 | mAP | training time | wall time | max load |\n"
        "|---|---|---|---|---|---|---|---|\n";
  for (const CampaignRun& r : runs) {
    const bool evaluated = r.epochs_done > 0;  // no metrics before the first epoch ends: "-", not 0
    auto percent = [&](double v) { return evaluated ? fixed(100 * v, 2) : std::string("-"); };
    os << "| " << r.folder << " | " << r.epochs_done << "/" << r.config.epochs
       << (r.diverged ? " diverged" : (r.finished ? "" : " running")) << " | " << percent(r.top1) << " | "
       << percent(r.top5) << " | " << percent(r.map) << " | " << (evaluated ? duration(r.train_seconds) : "-")
       << " | " << (r.wall_seconds > 0 ? duration(r.wall_seconds) : "-") << " | "
       << (r.max_load > 0 ? fixed(r.max_load, 2) : "-") << " |\n";
  }
  if (!runs.empty())
    os << "\nRecipe of the first run: " << runs.front().config.describe() << ", weight decay "
       << runs.front().config.wd << (runs.front().config.augment ? ", crop + flip" : "") << ".\n";
  if (!problems.empty()) {
    os << "\n## Folders that could not be read\n\n";
    for (const std::string& p : problems) os << "- " << p << "\n";
  }
  return os.str();
}

std::vector<MarginSeries> campaign_margin_series(const std::vector<CampaignRun>& runs) {
  std::vector<MarginSeries> out;
  std::vector<std::string> sections;
  const std::vector<CampaignConfig> configs = group_campaign(runs);
  for (const CampaignConfig& c : configs) add_unique(sections, section_key(c.dataset, c.epochs));
  for (const std::string& section : sections) {
    std::vector<SweepEntry> entries;  // one per configuration, carrying the mean top-1
    for (const CampaignConfig& c : configs) {
      // the sweep's figure is the usual recipe's runs (a bf16 run of the same loss would be a
      // second point at its m)
      if (section_key(c.dataset, c.epochs) != section || c.top1.n == 0 || !c.variant.empty()) continue;
      SweepEntry e;
      e.point.dataset = c.dataset;
      e.point.model = c.model;
      e.point.loss = c.loss;
      e.point.label = c.label;
      e.top1 = c.top1.mean / 100;
      entries.push_back(e);
    }
    if (entries.empty()) continue;
    std::vector<LineSeries> lines = accuracy_vs_m_series(entries, entries.front().point.dataset);
    if (lines.empty()) continue;
    const std::string title = entries.front().point.dataset + ", " + section.substr(section.rfind("_e") + 2) +
                              " epochs: test top-1 (mean over seeds) vs m";
    out.push_back({section, title, lines});
  }
  return out;
}

}  // namespace ag::train
