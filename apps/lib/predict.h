// Class predictions for image files with a trained run (the predict app): each image is
// decoded, resized to cover the model's input size and centre-cropped, normalised with the
// run's statistics, and scored in eval mode. Scores are softmax probabilities for a
// linear head and cosines cos(theta_j) for a cosine head (the margin losses), the numbers
// the apps rank classes by.
#pragma once

#include <string>
#include <vector>

#include "apps/lib/run_data.h"

namespace ag::train {

struct ClassScore {
  int64_t label = 0;
  double score = 0;
};

struct Prediction {
  std::string path;
  std::vector<ClassScore> top;  // best first; empty when the image could not be read
  std::string error;            // why it could not be read, naming the file
};

// "probability" or "cosine": what the scores of this run's head are.
std::string score_kind(const TrainedRun& run);

// The image files named by paths: files as given; folders searched recursively for
// .png/.jpg/.jpeg/.bmp/.gif/.tga files, sorted by path. A path that does not exist, or a
// folder without images, is an error naming it.
std::vector<std::string> expand_image_paths(const std::vector<std::string>& paths);

// The top k classes of each image, in batches of batch_size. An unreadable or undecodable
// image gets its error in its Prediction and does not stop the others.
std::vector<Prediction> predict_images(TrainedRun& run, const std::vector<std::string>& paths, int k,
                                       Device device, int64_t batch_size = 64);

// One block per image: its path, then "  class  score" lines.
std::string format_predictions(const std::vector<Prediction>& predictions,
                               const std::vector<std::string>& class_names, const std::string& kind);

}  // namespace ag::train
