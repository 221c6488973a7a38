// How tightly 2-D features sit around their class weight directions, and how far apart the
// classes are on the unit circle: the two numbers embed prints for its Figure 1.
//
//   ArcStats a = measure_arcs(panel);   // panel: features [N, 2], labels [N], weights [C, 2]
//   a.mean_angle_deg;                   // e.g. 8.1: features within a few degrees of their weight
//   a.min_gap_deg;                      // e.g. 30.3: an empty sector between the closest classes
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

}  // namespace ag::train
