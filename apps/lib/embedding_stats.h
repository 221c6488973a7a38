// How tightly 2-D features sit around their class weight directions, and how far apart the
// classes are on the unit circle: the two numbers embed prints for its Figure 1.
//
//   ArcStats a = measure_arcs(panel);   // panel: features [N, 2], labels [N], weights [C, 2]
//   a.mean_angle_deg;                   // e.g. 8.1: features within a few degrees of their weight
//   a.min_gap_deg;                      // e.g. 30.3: an empty sector between the closest classes
//
// And how embed sets up a cosine head's class weights before training (set_class_weights).
#pragma once

#include <string>

#include "apps/lib/plots.h"

namespace ag::train {

// A class's arc is the central 95% of its features' signed angles to its own weight (the
// 2.5% and 97.5% quantiles, so a few misclassified outliers do not close every gap). The
// gap between two classes whose weights are neighbours on the circle is the angle from the
// end of the first one's arc to the start of the next one's, counter-clockwise (negative:
// the arcs overlap).
struct ArcStats {
  double mean_angle_deg = 0;    // mean over all features of the angle to their own class weight
  double min_gap_deg = 0;       // the smallest gap between neighbouring classes' arcs
  std::string min_gap_between;  // "A / B": the two classes of that gap, counter-clockwise
};

// Throws ag::Error naming what is wrong for shapes that disagree, a label outside
// [0, C), a zero weight vector or fewer than 2 classes. Zero features are skipped.
ArcStats measure_arcs(const EmbeddingPanel& panel);

// embed --class-weights on a cosine head's weight [C, 2], a leaf parameter:
//   "fixed"   evenly spread round the circle (class k at 90 + 360 k / C degrees) and never
//             trained: it no longer requires a gradient, so it gets none and the optimizer
//             skips it (weight decay included);
//   "spread"  evenly spread at the start, then trained;
//   "random"  left as initialised (the usual start).
// A resumed run (resumed = true) keeps the weights it saved; "fixed" still stops training
// them. Throws ag::Error for another mode or a weight that is not [C, 2].
void set_class_weights(Tensor& weight, const std::string& mode, bool resumed);

}  // namespace ag::train
