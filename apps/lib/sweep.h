// The grid of apps/sweep: datasets x models x losses x s x m expanded into runs, and the
// report: Markdown tables in the layout of the paper's Tables 1 and 2 (rows: loss,
// columns: model, one table per dataset, cells "top-1 / mAP") and the series of its
// Figure 2 (test accuracy against the margin m).
#pragma once

#include <string>
#include <vector>

#include "apps/lib/plots.h"
#include "losses/classifier_loss.h"

namespace ag::train {

struct SweepGrid {
  std::vector<std::string> datasets, data_dirs;  // data_dirs: empty (defaults) or one per dataset
  std::vector<std::string> models;
  std::vector<std::string> losses;  // ce normface sphereface cosface arcface combined joint
  std::vector<double> s_values, m_values;
};

struct SweepPoint {
  std::string dataset, data_dir, model;
  MarginLossConfig loss;
  std::string folder;  // relative: <dataset>/<model>/<loss slug>
  std::string label;   // the table row: "ArcFace s=1, m=0.1"
};

// Every run of the grid, in table order. ce ignores s and m (one run per model), normface
// and combined ignore m (combined takes base's m1, m2, m3), the others take every (s, m).
// base supplies the loss fields the grid does not set (alpha, warm-up, smoothing, ...).
std::vector<SweepPoint> expand_sweep(const SweepGrid& grid, const MarginLossConfig& base);

struct SweepEntry {
  SweepPoint point;
  double top1 = 0, top5 = 0, map = 0;  // fractions
  double seconds = 0;                  // training wall time
  int64_t epochs = 0;
  bool diverged = false;  // NaN/Inf loss: shown as "diverged", left out of the plots
};

// One table per dataset (in order of first appearance), values in %; notes: a line under
// each heading (e.g. epochs and subsets).
std::string sweep_markdown(const std::vector<SweepEntry>& entries, const std::string& notes);

// For one dataset: a line of top-1 (%) against m per (model, margin kind, s) that has at
// least two m values, plus a flat line per model for cross-entropy over the same m range.
std::vector<LineSeries> accuracy_vs_m_series(const std::vector<SweepEntry>& entries,
                                             const std::string& dataset);

// The head of a Markdown table in the paper's layout: "| loss | model1 | ... |" and its
// separator line, both ending in a newline.
std::string loss_table_header(const std::vector<std::string>& models);

// The table row of a loss configuration: "cross-entropy", "ArcFace s=16, m=0.1", ...
std::string loss_label(const MarginLossConfig& loss);

// "a,b,c" -> {"a", "b", "c"} (empty items are an error naming the text); numbers checked.
std::vector<std::string> split_list(const std::string& text, const std::string& what);
std::vector<double> parse_number_list(const std::string& text, const std::string& what);

}  // namespace ag::train
