// TrainConfig: validation, JSON, default data folders and the train flags; see
// train_config.h.
#include "apps/lib/train_config.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <vector>

namespace ag::train {

namespace {

// "core/x.cpp:12: message" -> "message": a library error re-thrown as a usage error.
std::string without_location(const std::string& message) {
  static const std::regex location(R"(^[^ :]+:[0-9]+: )");
  return std::regex_replace(message, location, "", std::regex_constants::format_first_only);
}

bool one_of(const std::string& v, const std::vector<std::string>& choices) {
  for (const std::string& c : choices)
    if (v == c) return true;
  return false;
}

// A bad value: "--lr must be > 0, got -1 (see --help)".
[[noreturn]] void bad(const std::string& flag, const std::string& what, const std::string& got) {
  throw UsageError("--" + flag + " " + what + ", got " + got + " (see --help)");
}
template <typename T>
std::string str(const T& v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

const std::vector<std::string> kDatasets = {"cifar10", "cifar100", "fashion-mnist", "mnist", "folder"};
const std::vector<std::string> kLosses = {"ce",      "normface", "sphereface", "cosface",
                                          "arcface", "combined", "joint"};
const std::vector<std::string> kMargins = {"normface", "sphereface", "cosface", "arcface", "combined"};
const std::vector<std::string> kSchedules = {"constant", "step", "cosine", "onecycle"};

// Flags a resumed run may change: they do not alter the numbers (epochs extends the run;
// it re-lays a schedule that depends on the total, which the app says when it happens).
const std::vector<std::string> kResumeFlags = {"epochs",   "threads", "workers", "device",
                                               "progress", "plots",   "resume",  "out"};

// Flag name -> JSON pointer into TrainConfig::to_json().
const std::vector<std::pair<std::string, std::string>> kFlagKeys = {
    {"dataset", "/dataset"},
    {"data-dir", "/data_dir"},
    {"cifar100-labels", "/cifar100_labels"},
    {"train-subset", "/train_subset"},
    {"test-subset", "/test_subset"},
    {"subset", "/subset_mode"},
    {"augment", "/augment"},
    {"cutout", "/cutout"},
    {"model", "/model"},
    {"head", "/head"},
    {"loss", "/loss/kind"},
    {"s", "/loss/s"},
    {"m", "/loss/m"},
    {"m1", "/loss/m1"},
    {"m2", "/loss/m2"},
    {"m3", "/loss/m3"},
    {"alpha", "/loss/alpha"},
    {"joint-margin", "/loss/joint_margin"},
    {"easy-margin", "/loss/easy_margin"},
    {"label-smoothing", "/loss/label_smoothing"},
    {"margin-warmup", "/margin_warmup_epochs"},
    {"epochs", "/epochs"},
    {"batch-size", "/batch_size"},
    {"optimizer", "/optimizer"},
    {"lr", "/lr"},
    {"wd", "/wd"},
    {"momentum", "/momentum"},
    {"nesterov", "/nesterov"},
    {"decay-1d", "/decay_1d"},
    {"schedule", "/schedule"},
    {"warmup", "/warmup_epochs"},
    {"seed", "/seed"},
    {"threads", "/threads"},
    {"workers", "/workers"},
    {"device", "/device"},
    {"eval-batch-size", "/eval_batch_size"},
    {"out", "/out"},
    {"progress", "/progress"},
    {"plots", "/plots"},
};

void validate_data(const TrainConfig& c) {
  if (!one_of(c.dataset, kDatasets))
    bad("dataset", "must be one of cifar10|cifar100|fashion-mnist|mnist|folder", c.dataset);
  if (c.cifar100_labels != "fine" && c.cifar100_labels != "coarse")
    bad("cifar100-labels", "must be fine or coarse", c.cifar100_labels);
  if (c.train_subset < 0) bad("train-subset", "must be >= 0 (0: all)", str(c.train_subset));
  if (c.test_subset < 0) bad("test-subset", "must be >= 0 (0: all)", str(c.test_subset));
  if (c.subset_mode != "first" && c.subset_mode != "random")
    bad("subset", "must be first or random", c.subset_mode);
  if (c.cutout < 0) bad("cutout", "must be >= 0", str(c.cutout));
}

void validate_model_and_loss(const TrainConfig& c) {
  if (c.model.empty()) bad("model", "must name a model", "\"\"");
  if (!one_of(c.loss.kind, kLosses))
    bad("loss", "must be one of ce|normface|sphereface|cosface|arcface|combined|joint", c.loss.kind);
  if (c.loss.kind == "joint" && !one_of(c.loss.joint_margin, kMargins))
    bad("joint-margin", "must be one of normface|sphereface|cosface|arcface|combined", c.loss.joint_margin);
  if (!one_of(c.head, {"auto", "linear", "cosine"})) bad("head", "must be auto, linear or cosine", c.head);
  const std::string need = c.resolved_head();
  if (c.head != "auto" && c.head != need)
    throw UsageError(
        "--head " + c.head + " does not fit --loss " + c.loss.kind + ", which uses " +
        (need == "both" ? "both a linear and a cosine head (give --head auto)" : "a " + need + " head") +
        (c.loss.kind == "ce" ? "; a cosine head with plain softmax is --loss normface" : "") +
        " (see --help)");
  if (!(c.margin_warmup_epochs >= 0))
    bad("margin-warmup", "must be >= 0 epochs", str(c.margin_warmup_epochs));
  try {
    c.loss.validate();
  } catch (const Error& e) {
    throw UsageError("--loss " + c.loss.kind + ": " + without_location(e.what()) + " (see --help)");
  }
}

void validate_optimisation(const TrainConfig& c) {
  if (c.epochs < 1) bad("epochs", "must be >= 1", str(c.epochs));
  if (c.batch_size < 1) bad("batch-size", "must be >= 1", str(c.batch_size));
  if (c.optimizer != "sgd" && c.optimizer != "adamw") bad("optimizer", "must be sgd or adamw", c.optimizer);
  if (!(c.lr > 0) || !std::isfinite(c.lr)) bad("lr", "must be a finite number > 0", str(c.lr));
  if (!(c.wd >= 0) || !std::isfinite(c.wd)) bad("wd", "must be >= 0", str(c.wd));
  if (!(c.momentum >= 0 && c.momentum < 1)) bad("momentum", "must lie in [0, 1)", str(c.momentum));
  if (c.optimizer == "sgd" && c.nesterov && c.momentum == 0)
    bad("nesterov", "needs --momentum > 0 (or --no-nesterov)", "momentum 0");
  if (!one_of(c.schedule, kSchedules))
    bad("schedule", "must be one of constant|step|cosine|onecycle", c.schedule);
  if (!(c.warmup_epochs >= 0 && c.warmup_epochs < static_cast<double>(c.epochs)))
    bad("warmup", "must lie in [0, --epochs)", str(c.warmup_epochs));
  if (c.schedule == "onecycle" && c.warmup_epochs > 0)
    bad("warmup", "does not apply to --schedule onecycle, which warms up by itself", str(c.warmup_epochs));
}

void validate_execution(const TrainConfig& c) {
  if (c.threads < 0 || c.threads > 1024)
    bad("threads", "must lie in [0, 1024] (0: the default)", str(c.threads));
  if (c.workers < 0 || c.workers > 64) bad("workers", "must lie in [0, 64]", str(c.workers));
  try {
    Device::parse(c.device);
  } catch (const Error&) {
    bad("device", "must be cpu, cuda or cuda:N", c.device);
  }
  if (c.eval_batch_size < 1) bad("eval-batch-size", "must be >= 1", str(c.eval_batch_size));
  if (c.out.empty()) bad("out", "must name a folder", "\"\"");
  if (!one_of(c.progress, {"auto", "bar", "lines", "off"}))
    bad("progress", "must be auto, bar, lines or off", c.progress);
}

// Registers flags on a Flags object except those named in skip (apps that set them
// another way, e.g. sweep's grid).
struct SkippingFlags {
  Flags& flags;
  const std::set<std::string>& skip;
  template <typename... A>
  void add_string(const std::string& n, A&&... a) {
    if (!skip.count(n)) flags.add_string(n, std::forward<A>(a)...);
  }
  template <typename... A>
  void add_int(const std::string& n, A&&... a) {
    if (!skip.count(n)) flags.add_int(n, std::forward<A>(a)...);
  }
  template <typename... A>
  void add_double(const std::string& n, A&&... a) {
    if (!skip.count(n)) flags.add_double(n, std::forward<A>(a)...);
  }
  template <typename... A>
  void add_bool(const std::string& n, A&&... a) {
    if (!skip.count(n)) flags.add_bool(n, std::forward<A>(a)...);
  }
  void add_choice(const std::string& n, const std::string& def, const std::vector<std::string>& choices,
                  const std::string& help) {
    if (!skip.count(n)) flags.add_choice(n, def, choices, help);
  }
};

template <typename T>
void read(const nlohmann::json& j, const char* key, T& field, const std::string& where) {
  if (!j.contains(key)) return;
  try {
    field = j.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    AG_FAIL(where << ": field '" << key << "' is malformed (" << e.what() << ")");
  }
}

}  // namespace

std::string TrainConfig::resolved_head() const {
  if (loss.kind == "ce") return "linear";
  if (loss.kind == "joint") return "both";
  return "cosine";
}

void TrainConfig::validate() const {
  validate_data(*this);
  validate_model_and_loss(*this);
  validate_optimisation(*this);
  validate_execution(*this);
}

std::string TrainConfig::describe() const {
  std::ostringstream os;
  os << dataset << " " << model << " " << loss.describe() << " " << epochs << " epochs, batch " << batch_size
     << ", " << optimizer << " lr " << lr << " " << schedule;
  if (train_subset > 0) os << ", train subset " << train_subset;
  if (test_subset > 0) os << ", test subset " << test_subset;
  return os.str();
}

nlohmann::json TrainConfig::to_json() const {
  const MarginLossConfig& l = loss;
  return {{"dataset", dataset},
          {"data_dir", data_dir},
          {"cifar100_labels", cifar100_labels},
          {"train_subset", train_subset},
          {"test_subset", test_subset},
          {"subset_mode", subset_mode},
          {"augment", augment},
          {"cutout", cutout},
          {"model", model},
          {"head", head},
          {"loss",
           {{"kind", l.kind},
            {"s", l.s},
            {"m", l.m},
            {"m1", l.m1},
            {"m2", l.m2},
            {"m3", l.m3},
            {"alpha", l.alpha},
            {"joint_margin", l.joint_margin},
            {"easy_margin", l.easy_margin},
            {"label_smoothing", l.label_smoothing},
            {"description", l.describe()}}},
          {"margin_warmup_epochs", margin_warmup_epochs},
          {"epochs", epochs},
          {"batch_size", batch_size},
          {"optimizer", optimizer},
          {"lr", lr},
          {"wd", wd},
          {"momentum", momentum},
          {"nesterov", nesterov},
          {"decay_1d", decay_1d},
          {"schedule", schedule},
          {"warmup_epochs", warmup_epochs},
          {"seed", seed},
          {"threads", threads},
          {"workers", workers},
          {"device", device},
          {"eval_batch_size", eval_batch_size},
          {"out", out},
          {"resume", resume},
          {"progress", progress},
          {"plots", plots}};
}

TrainConfig TrainConfig::from_json(const nlohmann::json& j) {
  const std::string where = "training configuration";
  AG_CHECK(j.is_object(), where << ": expected a JSON object, got " << j.type_name());
  TrainConfig c;
  read(j, "dataset", c.dataset, where);
  read(j, "data_dir", c.data_dir, where);
  read(j, "cifar100_labels", c.cifar100_labels, where);
  read(j, "train_subset", c.train_subset, where);
  read(j, "test_subset", c.test_subset, where);
  read(j, "subset_mode", c.subset_mode, where);
  read(j, "augment", c.augment, where);
  read(j, "cutout", c.cutout, where);
  read(j, "model", c.model, where);
  read(j, "head", c.head, where);
  if (j.contains("loss")) {
    const nlohmann::json& l = j["loss"];
    const std::string lw = where + " loss";
    AG_CHECK(l.is_object(), lw << ": expected a JSON object");
    read(l, "kind", c.loss.kind, lw);
    read(l, "s", c.loss.s, lw);
    read(l, "m", c.loss.m, lw);
    read(l, "m1", c.loss.m1, lw);
    read(l, "m2", c.loss.m2, lw);
    read(l, "m3", c.loss.m3, lw);
    read(l, "alpha", c.loss.alpha, lw);
    read(l, "joint_margin", c.loss.joint_margin, lw);
    read(l, "easy_margin", c.loss.easy_margin, lw);
    read(l, "label_smoothing", c.loss.label_smoothing, lw);
  }
  read(j, "margin_warmup_epochs", c.margin_warmup_epochs, where);
  read(j, "epochs", c.epochs, where);
  read(j, "batch_size", c.batch_size, where);
  read(j, "optimizer", c.optimizer, where);
  read(j, "lr", c.lr, where);
  read(j, "wd", c.wd, where);
  read(j, "momentum", c.momentum, where);
  read(j, "nesterov", c.nesterov, where);
  read(j, "decay_1d", c.decay_1d, where);
  read(j, "schedule", c.schedule, where);
  read(j, "warmup_epochs", c.warmup_epochs, where);
  read(j, "seed", c.seed, where);
  read(j, "threads", c.threads, where);
  read(j, "workers", c.workers, where);
  read(j, "device", c.device, where);
  read(j, "eval_batch_size", c.eval_batch_size, where);
  read(j, "out", c.out, where);
  read(j, "resume", c.resume, where);
  read(j, "progress", c.progress, where);
  read(j, "plots", c.plots, where);
  return c;
}

std::string default_data_dir(const std::string& dataset) {
  std::string folder;
  if (dataset == "cifar10") folder = "cifar-10-batches-bin";
  if (dataset == "cifar100") folder = "cifar-100-binary";
  if (folder.empty()) return "";
  if (const char* root = std::getenv("ARCGRAD_DATA"); root != nullptr && *root != '\0') {
    const std::filesystem::path p = std::filesystem::path(root) / folder;
    if (std::filesystem::is_directory(p)) return p.string();
  }
  return (std::filesystem::path("datasets") / folder).string();
}

void add_train_flags(Flags& flags, const std::set<std::string>& skip) {
  const TrainConfig d;
  SkippingFlags f{flags, skip};
  f.add_choice("dataset", d.dataset, kDatasets, "the dataset");
  f.add_string("data-dir", d.data_dir,
               "its folder (\"\": $ARCGRAD_DATA/<name> or datasets/<name> for CIFAR, Debian's package for "
               "Fashion-MNIST)");
  f.add_choice("cifar100-labels", d.cifar100_labels, {"fine", "coarse"}, "CIFAR-100: 100 classes or 20");
  f.add_int("train-subset", d.train_subset, "train on N images only (0: all)");
  f.add_int("test-subset", d.test_subset, "evaluate on N test images only (0: all)");
  f.add_choice("subset", d.subset_mode, {"first", "random"},
               "which N: N seeded-random ones, or the first N (useless on files sorted by class)");
  f.add_bool("augment", d.augment, "random crop (padding 4) and horizontal flip");
  f.add_int("cutout", d.cutout, "Cutout square side in pixels (0: none)");
  f.add_string("model", d.model,
               "model spec, e.g. resnet20, resnet18:width=0.25, mobilenetv2:width=0.5, convnet:features=2");
  f.add_choice("head", d.head, {"auto", "linear", "cosine"},
               "classifier head (auto: linear for ce, cosine for the margin losses)");
  f.add_choice("loss", d.loss.kind, kLosses, "training loss");
  f.add_double("s", d.loss.s, "logit scale of the margin losses");
  f.add_double("m", d.loss.m, "margin: cosface/arcface additive, sphereface integer multiplier");
  f.add_double("m1", d.loss.m1, "combined margin: cos(m1*theta + m2) - m3");
  f.add_double("m2", d.loss.m2, "combined margin m2");
  f.add_double("m3", d.loss.m3, "combined margin m3");
  f.add_double("alpha", d.loss.alpha, "joint: weight of cross-entropy (1 - alpha: the margin loss)");
  f.add_choice("joint-margin", d.loss.joint_margin, kMargins, "joint: the margin loss it mixes in");
  f.add_bool("easy-margin", d.loss.easy_margin, "arcface/combined: no margin where cos(theta_y) <= 0");
  f.add_double("label-smoothing", d.loss.label_smoothing, "label smoothing of every cross-entropy");
  f.add_double("margin-warmup", d.margin_warmup_epochs, "epochs over which the margin rises from 0");
  f.add_int("epochs", d.epochs, "passes over the training set");
  f.add_int("batch-size", d.batch_size, "training batch size");
  f.add_choice("optimizer", d.optimizer, {"sgd", "adamw"}, "sgd: momentum + Nesterov; adamw");
  f.add_double("lr", d.lr, "base (peak) learning rate");
  f.add_double("wd", d.wd, "weight decay");
  f.add_double("momentum", d.momentum, "SGD momentum");
  f.add_bool("nesterov", d.nesterov, "SGD Nesterov momentum");
  f.add_bool("decay-1d", d.decay_1d, "also decay biases and batch-norm parameters");
  f.add_choice("schedule", d.schedule, kSchedules, "learning-rate schedule (per step)");
  f.add_double("warmup", d.warmup_epochs, "linear learning-rate warm-up, in epochs");
  f.add_int("seed", static_cast<int64_t>(d.seed), "seed of the initialisation, shuffling and augmentation");
  f.add_int("threads", d.threads, "compute threads (0: the default)");
  f.add_int("workers", d.workers, "data-loader threads (results do not depend on it)");
  f.add_string("device", d.device, "cpu, cuda or cuda:N");
  f.add_int("eval-batch-size", d.eval_batch_size, "evaluation batch size");
  f.add_string("out", d.out, "run folder: config.json, metrics, checkpoint, plots");
  f.add_bool("resume", d.resume, "continue the run in --out from its checkpoint");
  f.add_choice("progress", d.progress, {"auto", "bar", "lines", "off"},
               "progress display (auto: a bar on a terminal, lines otherwise)");
  f.add_bool("plots", d.plots, "draw PNG plots at the end (needs gnuplot)");
}

TrainConfig config_from_flags(const Flags& f, const std::set<std::string>& skip) {
  TrainConfig c;
  auto on = [&](const char* name) { return skip.count(name) == 0; };
  if (on("dataset")) c.dataset = f.get_string("dataset");
  if (on("data-dir")) c.data_dir = f.get_string("data-dir");
  if (on("cifar100-labels")) c.cifar100_labels = f.get_string("cifar100-labels");
  if (on("train-subset")) c.train_subset = f.get_int("train-subset");
  if (on("test-subset")) c.test_subset = f.get_int("test-subset");
  if (on("subset")) c.subset_mode = f.get_string("subset");
  if (on("augment")) c.augment = f.get_bool("augment");
  if (on("cutout")) c.cutout = f.get_int("cutout");
  if (on("model")) c.model = f.get_string("model");
  if (on("head")) c.head = f.get_string("head");
  if (on("loss")) c.loss.kind = f.get_string("loss");
  if (on("s")) c.loss.s = f.get_double("s");
  if (on("m")) c.loss.m = f.get_double("m");
  if (on("m1")) c.loss.m1 = f.get_double("m1");
  if (on("m2")) c.loss.m2 = f.get_double("m2");
  if (on("m3")) c.loss.m3 = f.get_double("m3");
  if (on("alpha")) c.loss.alpha = f.get_double("alpha");
  if (on("joint-margin")) c.loss.joint_margin = f.get_string("joint-margin");
  if (on("easy-margin")) c.loss.easy_margin = f.get_bool("easy-margin");
  if (on("label-smoothing")) c.loss.label_smoothing = f.get_double("label-smoothing");
  if (on("margin-warmup")) c.margin_warmup_epochs = f.get_double("margin-warmup");
  if (on("epochs")) c.epochs = f.get_int("epochs");
  if (on("batch-size")) c.batch_size = f.get_int("batch-size");
  if (on("optimizer")) c.optimizer = f.get_string("optimizer");
  if (on("lr")) c.lr = f.get_double("lr");
  if (on("wd")) c.wd = f.get_double("wd");
  if (on("momentum")) c.momentum = f.get_double("momentum");
  if (on("nesterov")) c.nesterov = f.get_bool("nesterov");
  if (on("decay-1d")) c.decay_1d = f.get_bool("decay-1d");
  if (on("schedule")) c.schedule = f.get_string("schedule");
  if (on("warmup")) c.warmup_epochs = f.get_double("warmup");
  const int64_t seed = f.get_int("seed");
  if (seed < 0) f.fail("seed", "must be >= 0, got " + std::to_string(seed));
  c.seed = static_cast<uint64_t>(seed);
  const int64_t threads = f.get_int("threads"), workers = f.get_int("workers");
  if (threads < 0 || threads > 1024)
    f.fail("threads", "must lie in [0, 1024], got " + std::to_string(threads));
  if (workers < 0 || workers > 64) f.fail("workers", "must lie in [0, 64], got " + std::to_string(workers));
  c.threads = static_cast<int>(threads);
  c.workers = static_cast<int>(workers);
  if (on("device")) c.device = f.get_string("device");
  if (on("eval-batch-size")) c.eval_batch_size = f.get_int("eval-batch-size");
  if (on("out")) c.out = f.get_string("out");
  if (on("resume")) c.resume = f.get_bool("resume");
  if (on("progress")) c.progress = f.get_string("progress");
  if (on("plots")) c.plots = f.get_bool("plots");
  c.validate();
  return c;
}

std::string resume_conflict(const TrainConfig& saved, const TrainConfig& now) {
  const nlohmann::json a = saved.to_json(), b = now.to_json();
  for (const auto& [flag, key] : kFlagKeys) {
    if (one_of(flag, kResumeFlags)) continue;
    const nlohmann::json::json_pointer p(key);
    if (a.at(p) != b.at(p)) return "--" + flag + " was " + a.at(p).dump() + ", now " + b.at(p).dump();
  }
  return "";
}

TrainConfig merge_resume_flags(const TrainConfig& saved, const Flags& f) {
  const TrainConfig given = config_from_flags(f);
  const nlohmann::json a = saved.to_json(), b = given.to_json();
  for (const auto& [flag, key] : kFlagKeys) {
    if (!f.was_set(flag) || one_of(flag, kResumeFlags)) continue;
    const nlohmann::json::json_pointer p(key);
    if (a.at(p) != b.at(p))
      throw UsageError("--" + flag + " " + b.at(p).dump() + " differs from the resumed run's " +
                       a.at(p).dump() +
                       "; a resumed run keeps its configuration (it may change only --epochs, --threads, "
                       "--workers, --device, --progress and --plots)");
  }
  TrainConfig c = saved;
  c.resume = true;
  c.out = given.out;
  if (f.was_set("epochs")) c.epochs = given.epochs;
  if (f.was_set("threads")) c.threads = given.threads;
  if (f.was_set("workers")) c.workers = given.workers;
  if (f.was_set("device")) c.device = given.device;
  if (f.was_set("progress")) c.progress = given.progress;
  if (f.was_set("plots")) c.plots = given.plots;
  c.validate();
  return c;
}

}  // namespace ag::train
