// The results of a training campaign (scripts/reproduce_full.sh) read back from its run
// folders: every folder under a root that holds a config.json is one run; runs that differ
// only in their seed form one configuration, reported as mean +- standard deviation over
// the seeds that finished. The tables can be regenerated at any time, also while runs are
// still going (those are listed as in progress and left out of the means).
#pragma once

#include <string>
#include <vector>

#include "apps/lib/plots.h"
#include "apps/lib/train_config.h"

namespace ag::train {

struct CampaignRun {
  std::string folder;  // relative to the campaign root
  TrainConfig config;
  int64_t epochs_done = 0;
  bool finished = false;               // all config.epochs epochs evaluated
  bool diverged = false;               // the campaign marked it (campaign.diverged)
  double top1 = 0, top5 = 0, map = 0;  // test metrics after the last epoch, fractions
  double train_seconds = 0;            // sum of metrics.csv's per-epoch seconds
  double wall_seconds = 0;             // sum of campaign.log's wall_s (0 when absent)
  double max_load = 0;                 // largest 1-minute load average in campaign.log
};

// Every run folder below root, sorted by folder. Folders whose files cannot be read are
// not runs: each adds a line "folder: reason" to problems instead of stopping the scan.
std::vector<CampaignRun> scan_campaign(const std::string& root, std::vector<std::string>& problems);

struct MeanStd {
  double mean = 0, std = 0;  // std: sample standard deviation (n - 1); 0 for n = 1
  int n = 0;
};
MeanStd mean_std(const std::vector<double>& values);

// One configuration: the finished runs of one dataset, epoch count, model, loss and recipe
// variant.
struct CampaignConfig {
  std::string dataset, model, label;  // label: the table row, e.g. "ArcFace s=16, m=0.1"
  std::string variant;  // how the recipe departs from the usual one (bf16, a re-encoded copy of the
                        // data, Cutout), e.g. ", bf16": such runs are rows of their own; "" if none
  int64_t epochs = 0;
  MarginLossConfig loss;
  MeanStd top1, map;            // in %
  std::vector<uint64_t> seeds;  // of the finished runs
  int in_progress = 0, diverged = 0;
};
std::vector<CampaignConfig> group_campaign(const std::vector<CampaignRun>& runs);

// The report: one table per (dataset, epochs) in the paper's layout (rows: loss, columns:
// model, cells "top-1 / mAP" as mean +- std), then one line per run with its times.
// plot_files: per (dataset, epochs) accuracy-vs-m plot file names to link, may be empty.
std::string campaign_markdown(const std::vector<CampaignRun>& runs, const std::vector<std::string>& problems,
                              const std::string& root);

// For each (dataset, epochs) with at least two margins of one (model, margin kind, s): the
// mean top-1 against m, as accuracy_vs_m_series draws it; the key names the section,
// e.g. "cifar100_e15".
struct MarginSeries {
  std::string key, title;
  std::vector<LineSeries> lines;
};
std::vector<MarginSeries> campaign_margin_series(const std::vector<CampaignRun>& runs);

}  // namespace ag::train
