// Datasets, subsets, statistics, transforms and the evaluation pass of a run; see run_data.h.
#include "apps/lib/run_data.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <optional>
#include <sstream>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/serialize/json_number.h"
#include "data/open_dataset.h"

namespace ag::train {

namespace {
constexpr uint64_t kSubsetStream = 0x5b5e7;  // keeps subset draws apart from other seeded streams

std::shared_ptr<const Dataset> take_subset(Dataset data, int64_t n, const TrainConfig& config,
                                           uint64_t stream) {
  if (n <= 0 || n >= data.size()) return std::make_shared<const Dataset>(std::move(data));
  Dataset sub = data.subset(subset_indices(data.size(), n, config.subset_mode, config.seed + stream));
  sub.set_source(data.source());
  return std::make_shared<const Dataset>(std::move(sub));
}

// The dataset with the run's border round every image (TrainConfig::border).
Dataset bordered(Dataset data, const TrainConfig& config) {
  return config.border == 0 ? data : data.with_border(config.border);
}

std::string describe_data(const TrainConfig& config, const RunData& d) {
  std::ostringstream os;
  os << config.dataset << " (" << (d.data_dir.empty() ? "default folder" : d.data_dir) << "): ";
  if (d.train) os << d.train->size() << " train" << (config.train_subset > 0 ? " [subset]" : "") << ", ";
  os << d.test->size() << " test" << (config.test_subset > 0 ? " [subset]" : "") << ", "
     << d.test->num_classes() << " classes, " << d.test->channels() << "x" << d.test->height() << "x"
     << d.test->width();
  if (config.train_subset > 0 || config.test_subset > 0) os << ", subsets: " << config.subset_mode;
  return os.str();
}
}  // namespace

std::vector<int64_t> subset_indices(int64_t size, int64_t n, const std::string& mode, uint64_t seed) {
  AG_CHECK(size >= 0 && n >= 0, "subset_indices: negative size " << size << " or n " << n);
  AG_CHECK(mode == "first" || mode == "random", "subset_indices: mode must be first or random, got " << mode);
  std::vector<int64_t> all(static_cast<size_t>(size));
  std::iota(all.begin(), all.end(), 0);
  if (n == 0 || n >= size) return all;
  if (mode == "random") {
    // A partial Fisher-Yates with the library's generator: the same subset on every platform.
    Generator gen = Generator(seed).fork(kSubsetStream);
    for (int64_t i = 0; i < n; ++i)
      std::swap(all[static_cast<size_t>(i)],
                all[static_cast<size_t>(i) + gen.below(static_cast<uint64_t>(size - i))]);
    all.resize(static_cast<size_t>(n));
    std::sort(all.begin(), all.end());
  } else {
    all.resize(static_cast<size_t>(n));
  }
  return all;
}

ChannelStats stats_for(const std::string& dataset, const Dataset& train) {
  if (dataset == "cifar10" && train.channels() == 3) return cifar10_stats();
  if (dataset == "cifar100" && train.channels() == 3) return cifar100_stats();
  return compute_channel_stats(train);
}

RunData open_run_data(const TrainConfig& config, bool with_train, const ChannelStats* stats) {
  AG_CHECK(with_train || stats != nullptr, "open_run_data: without the training set the stats must be given");
  RunData d;
  d.data_dir = config.data_dir.empty() ? default_data_dir(config.dataset) : config.data_dir;
  DatasetOptions options;
  options.cifar100_labels = parse_cifar_labels(config.cifar100_labels);
  Dataset test = bordered(open_dataset(config.dataset, d.data_dir, Split::test, options), config);
  if (with_train) {
    Dataset train = bordered(open_dataset(config.dataset, d.data_dir, Split::train, options), config);
    d.stats = stats ? *stats : stats_for(config.dataset, train);
    d.train = take_subset(std::move(train), config.train_subset, config, 0);
  } else {
    d.stats = *stats;
  }
  d.test = take_subset(std::move(test), config.test_subset, config, 1);
  d.description = describe_data(config, d);
  return d;
}

RunData wrap_run_data(const TrainConfig& config, std::shared_ptr<const Dataset> train,
                      std::shared_ptr<const Dataset> test) {
  AG_CHECK(train && test, "wrap_run_data: needs a training and a test set");
  RunData d;
  d.data_dir = train->source();
  Dataset train_images = bordered(*train, config);
  d.stats = stats_for(config.dataset, train_images);
  d.train = take_subset(std::move(train_images), config.train_subset, config, 0);
  d.test = take_subset(bordered(*test, config), config.test_subset, config, 1);
  d.description = describe_data(config, d);
  return d;
}

Transform train_transform_for(const TrainConfig& config, const ChannelStats& stats) {
  if (!config.augment) {
    Transform t = eval_transform(stats);
    t.cutout = static_cast<int>(config.cutout);
    return t;
  }
  return train_transform(stats, 4, static_cast<int>(config.cutout));
}

nlohmann::json stats_to_json(const ChannelStats& stats) { return {{"mean", stats.mean}, {"std", stats.std}}; }

namespace {
// j[key] as floats: an array of finite numbers of moderate size, as the means and standard
// deviations of pixel values in [0,1] are (1e300 would turn into infinity as a float).
std::vector<float> finite_floats(const nlohmann::json& j, const char* key) {
  const bool ok = j.is_object() && j.contains(key) && j[key].is_array();
  AG_CHECK(ok, "channel statistics: no '" << key << "' array");
  std::vector<float> out;
  for (const nlohmann::json& v : j[key]) {
    const double x = v.is_number() ? v.get<double>() : std::nan("");
    AG_CHECK(std::isfinite(x) && std::abs(x) <= 1e6, "channel statistics: '"
                                                         << key << "' is " << j[key].dump()
                                                         << ", not a list of moderate numbers");
    out.push_back(static_cast<float>(x));
  }
  return out;
}
}  // namespace

ChannelStats stats_from_json(const nlohmann::json& j) {
  ChannelStats s{finite_floats(j, "mean"), finite_floats(j, "std")};
  AG_CHECK(s.mean.size() == s.std.size(), "channel statistics: " << s.mean.size() << " means but "
                                                                 << s.std.size() << " standard deviations");
  for (float sd : s.std)
    AG_CHECK(sd > 0, "channel statistics: a standard deviation is " << sd << ", not > 0");
  return s;
}

namespace {

// The sharded evaluation of evaluate_classifier (loader: this rank's slice).
EvalResult evaluate_sharded(Classifier& net, DataLoader& loader, Device device, double* mean_loss,
                            dist::Communicator& comm) {
  const int64_t n = loader.size(), classes = net.criterion().classes();
  std::vector<double> scores(static_cast<size_t>(n * classes), 0.0), labels(static_cast<size_t>(n), 0.0);
  double sums[2] = {0, 0};  // loss sum, images
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    Tensor features = net.features(batch->images.to(device));
    const std::vector<double> s = net.criterion()(features).to_vector();  // [b, classes]
    const std::vector<int64_t> l = batch->labels.to_labels();
    for (size_t k = 0; k < l.size(); ++k) {
      const auto row = static_cast<size_t>(batch->indices[k]);
      std::copy_n(s.begin() + static_cast<std::ptrdiff_t>(k * static_cast<size_t>(classes)), classes,
                  scores.begin() + static_cast<std::ptrdiff_t>(row * static_cast<size_t>(classes)));
      labels[row] = static_cast<double>(l[k]);
    }
    if (mean_loss)
      sums[0] += net.criterion().loss(features, batch->labels).item() * static_cast<double>(l.size());
    sums[1] += static_cast<double>(l.size());
  }
  comm.allreduce_sum(scores.data(), static_cast<int64_t>(scores.size()));
  comm.allreduce_sum(labels.data(), n);
  comm.allreduce_sum(sums, 2);
  AG_CHECK(sums[1] == static_cast<double>(n),
           "sharded evaluation: the ranks scored " << sums[1] << " of " << n << " test images");
  std::vector<int64_t> label_ids(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) label_ids[i] = static_cast<int64_t>(labels[i]);
  ClassificationEvaluator evaluator(classes);
  evaluator.add(Tensor::from_vector(scores, {n, classes}, DType::f64), Tensor::from_labels(label_ids));
  if (mean_loss) *mean_loss = sums[0] / sums[1];
  return evaluator.result();
}

}  // namespace

EvalResult evaluate_classifier(Classifier& net, DataLoader& loader, Device device, double* mean_loss,
                               dist::Communicator* comm) {
  AG_CHECK(!loader.options().shuffle, "evaluate_classifier: the loader must not shuffle");
  if (comm != nullptr && comm->size() > 1) {
    AG_CHECK(loader.options().world == comm->size() && loader.options().rank == comm->rank(),
             "evaluate_classifier: the loader is built for rank "
                 << loader.options().rank << " of " << loader.options().world << ", not " << comm->rank()
                 << " of " << comm->size());
    const bool was_training = net.is_training();
    net.eval();
    NoGradGuard no_grad;
    EvalResult r = evaluate_sharded(net, loader, device, mean_loss, *comm);
    net.train(was_training);
    return r;
  }
  return evaluate_classifier_views(net, {&loader}, device, mean_loss);
}

EvalResult evaluate_classifier_views(Classifier& net, const std::vector<DataLoader*>& views, Device device,
                                     double* mean_loss) {
  AG_CHECK(!views.empty(), "evaluate_classifier_views: no view to evaluate");
  for (const DataLoader* view : views) {
    AG_CHECK(!view->options().shuffle, "evaluate_classifier: the loader must not shuffle");
    AG_CHECK(view->size() == views[0]->size() && view->options().batch_size == views[0]->options().batch_size,
             "evaluate_classifier_views: the views differ in size ("
                 << view->size() << " vs " << views[0]->size() << ") or batch size");
  }
  const bool was_training = net.is_training();
  net.eval();
  NoGradGuard no_grad;
  ClassificationEvaluator evaluator(net.criterion().classes());
  const double view_weight = 1.0 / static_cast<double>(views.size());
  double loss_sum = 0;
  for (DataLoader* view : views) view->start_epoch(0);
  for (;;) {
    Tensor score_sum, labels;      // [b, classes] summed over the views; int64 [b]
    std::vector<int64_t> samples;  // the batch's dataset indices, the same in every view
    size_t finished = 0;
    for (DataLoader* view : views) {
      std::optional<Batch> batch = view->next();
      if (!batch) {
        ++finished;
        continue;
      }
      AG_CHECK(samples.empty() || batch->indices == samples,
               "evaluate_classifier_views: the views' batches hold different samples");
      if (samples.empty()) samples = std::move(batch->indices);  // compared, not copied, after the first view
      Tensor features = net.features(batch->images.to(device));
      Tensor scores = net.criterion()(features);
      score_sum = score_sum.defined() ? add(score_sum, scores) : scores;
      labels = batch->labels;
      if (mean_loss)
        loss_sum +=
            view_weight * net.criterion().loss(features, labels).item() * static_cast<double>(labels.size(0));
    }
    AG_CHECK(finished == 0 || finished == views.size(),
             "evaluate_classifier_views: the views ran out of batches at different points");
    if (finished == views.size()) break;
    evaluator.add(views.size() == 1 ? score_sum : mul(score_sum, view_weight), labels);
  }
  net.train(was_training);
  if (mean_loss) *mean_loss = loss_sum / static_cast<double>(evaluator.count());
  return evaluator.result();
}

std::string format_per_class(const EvalResult& r, const std::vector<std::string>& names) {
  std::ostringstream os;
  size_t width = 5;
  for (const std::string& n : names) width = std::max(width, n.size());
  char line[256];
  std::snprintf(line, sizeof line, "%-*s %8s %10s %8s\n", static_cast<int>(width), "class", "samples",
                "accuracy%", "AP%");
  os << line;
  for (size_t c = 0; c < r.per_class_accuracy.size(); ++c) {
    int64_t count = 0;
    if (c < r.confusion.size())
      for (int64_t v : r.confusion[c]) count += v;
    const std::string name = c < names.size() ? names[c] : std::to_string(c);
    std::snprintf(line, sizeof line, "%-*s %8lld %10.2f %8.2f\n", static_cast<int>(width), name.c_str(),
                  static_cast<long long>(count), 100 * r.per_class_accuracy[c], 100 * r.per_class_ap[c]);
    os << line;
  }
  return os.str();
}

std::string format_confusion(const EvalResult& r, const std::vector<std::string>& names) {
  std::ostringstream os;
  const size_t k = r.confusion.size();
  int64_t biggest = 1;
  for (const auto& row : r.confusion)
    for (int64_t v : row) biggest = std::max(biggest, v);
  const int cell = std::max(4, static_cast<int>(std::to_string(biggest).size()) + 1);
  size_t label = 4;
  for (size_t c = 0; c < k; ++c)
    label = std::max(label, std::min<size_t>(12, c < names.size() ? names[c].size() : 3));
  os << "confusion matrix (rows: true class, columns: predicted class index)\n";
  os << std::string(label + 6, ' ');
  for (size_t c = 0; c < k; ++c) os << std::string(cell - std::to_string(c).size(), ' ') << c;
  os << "\n";
  for (size_t t = 0; t < k; ++t) {
    std::string name = t < names.size() ? names[t].substr(0, 12) : std::to_string(t);
    char head[64];
    std::snprintf(head, sizeof head, "%3zu %-*s  ", t, static_cast<int>(label), name.c_str());
    os << head;
    for (int64_t v : r.confusion[t]) {
      const std::string s = std::to_string(v);
      os << std::string(cell - s.size(), ' ') << s;
    }
    os << "\n";
  }
  return os.str();
}

Tensor collect_features(Classifier& net, DataLoader& loader, Device device, Tensor* labels) {
  AG_CHECK(!loader.options().shuffle, "collect_features: the loader must not shuffle");
  const bool was_training = net.is_training();
  net.eval();
  NoGradGuard no_grad;
  std::vector<Tensor> features, label_parts;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    features.push_back(net.features(batch->images.to(device)).to(Device::cpu()));
    label_parts.push_back(batch->labels.clone());  // the loader reuses its buffers
  }
  net.train(was_training);
  if (labels) *labels = cat(label_parts, 0);
  return cat(features, 0);
}

TrainedRun load_trained_run(const std::string& path, Device device) {
  TrainedRun run;
  // (Built in one expression: assigning "." afterwards trips a GCC 12 -Wrestrict false positive.)
  const std::string dir =
      std::filesystem::is_regular_file(path) ? std::filesystem::path(path).parent_path().string() : path;
  run.dir = dir.empty() ? std::string(".") : dir;
  run.state = read_checkpoint_state(run.dir);
  const std::string what = "checkpoint in '" + run.dir + "'";
  try {
    run.config = TrainConfig::from_json(run.state.config);
    run.config.validate();
    const nlohmann::json& extra = run.state.extra;
    run.stats = stats_from_json(extra.at("stats"));
    run.class_names = extra.at("class_names").get<std::vector<std::string>>();
    run.image_shape = serialize::json_int64_array(extra.at("image_shape"), "its image_shape");
  } catch (const std::exception& e) {
    AG_FAIL(what << " does not describe a training run: " << e.what());
  }
  const auto& shape = run.image_shape;
  AG_CHECK(shape.size() == 3 && run.class_names.size() >= 2,
           what << ": image_shape must be [C, H, W] and there must be at least 2 classes");
  AG_CHECK(std::ranges::all_of(shape, [](int64_t d) { return d >= 1 && d <= 65536; }) &&
               run.stats.mean.size() == static_cast<size_t>(shape[0]),
           what << ": image_shape [" << shape[0] << ", " << shape[1] << ", " << shape[2]
                << "] is not a plausible image (or its channel statistics have " << run.stats.mean.size()
                << " channels)");
  run.net = make_classifier(run.config, run.image_shape[0], static_cast<int64_t>(run.class_names.size()), 1);
  load_checkpoint(run.dir, *run.net, nullptr);
  run.net->to(device);
  return run;
}

}  // namespace ag::train
