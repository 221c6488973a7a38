// PNG plots drawn by gnuplot (Debian: gnuplot-nox), run as a subprocess with the pngcairo
// terminal (falling back to png). Data go to temporary files; the PNG is written next to
// its target and renamed into place, so a failed plot leaves no half-written image.
// Every function throws ag::Error with gnuplot's own message when a plot fails, and a
// clear "gnuplot was not found" when it is not installed.
#pragma once

#include <string>
#include <vector>

#include "apps/lib/metrics_log.h"
#include "core/tensor.h"

namespace ag::train {

// Whether a gnuplot that can write PNG files is on PATH (checked once).
bool gnuplot_available();

// Loss per epoch (left) and accuracies per epoch in % (right) from a metrics table with an
// "epoch" column. Empty lists choose the columns by name: the left panel takes columns
// ending in "loss", the right those containing "acc", "top" or "map" (fractions in [0,1]).
void plot_training_curves(const std::string& png, const MetricsTable& table, const std::string& title,
                          std::vector<std::string> loss_columns = {},
                          std::vector<std::string> accuracy_columns = {});

// Heat map of a confusion matrix [true][predicted], each row normalised to % of its
// class; class names on the axes (up to 20 classes) and the values in the cells (up to 12).
void plot_confusion_matrix(const std::string& png, const std::vector<std::vector<int64_t>>& confusion,
                           const std::vector<std::string>& class_names, const std::string& title);

struct LineSeries {
  std::string name;
  std::vector<double> x, y;
};
// Lines with point markers, one per series (e.g. accuracy against the margin m, in the
// manner of the paper's Figure 2).
void plot_lines(const std::string& png, const std::vector<LineSeries>& series, const std::string& title,
                const std::string& x_label, const std::string& y_label);
inline void plot_accuracy_vs_m(const std::string& png, const std::vector<LineSeries>& series,
                               const std::string& title) {
  plot_lines(png, series, title, "margin m", "test accuracy (%)");
}

// One panel of 2-D features: each point is normalised onto the unit circle (drawn in a thin
// band around it, so dense arcs stand out from scattered points) and coloured by its class,
// and each class weight direction is drawn as an arrow from the origin.
struct EmbeddingPanel {
  std::string title;
  Tensor features;                       // [N, 2] float
  Tensor labels;                         // int64 [N], values in [0, C)
  Tensor weights;                        // [C, 2] float: the class weight vectors
  std::vector<std::string> class_names;  // C names
};
// The panels side by side in one PNG (the paper's Figure 1: softmax vs ArcFace).
void plot_embeddings(const std::string& png, const std::vector<EmbeddingPanel>& panels);

}  // namespace ag::train
