// The training loop; see trainer.h.
#include "apps/lib/trainer.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include "apps/lib/checkpoint.h"
#include "apps/lib/distributed.h"
#include "apps/lib/metrics_log.h"
#include "apps/lib/plots.h"
#include "apps/lib/profile_report.h"
#include "core/autograd.h"
#include "core/cuda_api.h"
#include "core/parallel.h"
#include "core/profiler.h"
#include "core/random.h"
#include "core/serialize/atomic_file.h"
#include "core/serialize/json_number.h"
#include "layers/batch_norm.h"
#include "models/trace.h"

namespace ag::train {

namespace fs = std::filesystem;

namespace {

volatile std::sig_atomic_t g_sigint = 0;

extern "C" void on_sigint(int) { g_sigint = 1; }

double now_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

const std::vector<std::string> kCsvColumns = {
    "epoch",     "step",      "lr",       "train_loss", "test_loss",     "train_acc",
    "test_top1", "test_top5", "test_map", "seconds",    "images_per_sec"};

std::string percent(double fraction) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(2) << 100 * fraction << "%";
  return os.str();
}

// The epoch a metrics.csv row starts with; nothing for a line cut short by a kill.
std::optional<int64_t> leading_epoch(const std::string& line) {
  int64_t epoch = 0;
  const char* end = line.data() + line.size();
  const auto [next, error] = std::from_chars(line.data(), end, epoch);
  if (error != std::errc() || next == end || *next != ',') return std::nullopt;
  return epoch;
}

nlohmann::json partial_epoch_json(const EpochSums& sums) {
  return {{"batches", sums.batches},
          {"seen", sums.seen},
          {"correct", sums.correct},
          {"loss_sum", sums.loss_sum},
          {"seconds", sums.seconds}};
}

// The sums of the epoch a checkpoint was saved in the middle of (extra["partial"]), zero
// when it was saved at an epoch's end; what names the checkpoint for errors.
EpochSums partial_epoch_sums(const nlohmann::json& extra, const std::string& what) {
  if (!extra.contains("partial")) return {};
  const nlohmann::json& p = extra["partial"];
  const std::string where = what + ", its partial epoch";
  EpochSums sums;
  sums.batches = serialize::json_int64_field(p, "batches", where);
  sums.seen = serialize::json_int64_field(p, "seen", where);
  sums.correct = serialize::json_int64_field(p, "correct", where);
  sums.loss_sum = serialize::json_number_field(p, "loss_sum", where);
  sums.seconds = serialize::json_number_field(p, "seconds", where);
  AG_CHECK(sums.batches >= 0 && sums.seen >= 0 && sums.correct >= 0 && sums.correct <= sums.seen,
           where << ": negative counts or more correct than seen");
  return sums;
}

// Keeps the metrics lines of epochs <= last (a resumed run rewrites the epochs after its
// checkpoint, so a crash between the metrics and the checkpoint leaves no duplicate).
void truncate_metrics(const fs::path& dir, int64_t last) {
  const fs::path jsonl = dir / "metrics.jsonl", csv = dir / "metrics.csv";
  if (fs::exists(jsonl)) {
    std::ifstream in(jsonl);
    std::string line, kept;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      const std::optional<int64_t> epoch =
          j.is_object() && j.contains("epoch") ? serialize::json_int64(j["epoch"]) : std::nullopt;
      if (epoch && *epoch <= last) kept += line + "\n";
    }
    serialize::write_file_atomic(jsonl.string(), kept);
  }
  if (fs::exists(csv)) {
    std::ifstream in(csv);
    std::string line, kept;
    bool header = true;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      if (header || leading_epoch(line).value_or(last + 1) <= last) kept += line + "\n";
      header = false;
    }
    serialize::write_file_atomic(csv.string(), kept);
  }
}

std::vector<double> csv_values(const EpochRecord& r) {
  return {static_cast<double>(r.epoch),
          static_cast<double>(r.step),
          r.lr,
          r.train_loss,
          r.test_loss,
          r.train_acc,
          r.test.top1,
          r.test.top5,
          r.test.map,
          r.seconds,
          r.images_per_sec};
}

// Where the other ranks' messages go: rank 0 alone talks.
std::ostream& null_stream() {
  static std::ostream null(nullptr);  // no buffer: every write is dropped
  return null;
}

ProgressOptions progress_options(const TrainConfig& config, ProgressOptions base) {
  if (config.progress == "bar") base.mode = ProgressOptions::Mode::terminal;
  if (config.progress == "lines") base.mode = ProgressOptions::Mode::lines;
  return base;
}

}  // namespace

void install_sigint_handler() {
  struct sigaction action {};
  action.sa_handler = on_sigint;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESETHAND;  // a second Ctrl-C terminates the default way
  sigaction(SIGINT, &action, nullptr);
}
bool sigint_received() { return g_sigint != 0; }
void clear_sigint() { g_sigint = 0; }

nlohmann::json epoch_record_to_json(const EpochRecord& r) {
  auto nan_to_null = [](const std::vector<double>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (double x : v) a.push_back(std::isnan(x) ? nlohmann::json() : nlohmann::json(x));
    return a;
  };
  return {{"epoch", r.epoch},
          {"step", r.step},
          {"lr", r.lr},
          {"train_loss", r.train_loss},
          {"train_acc", r.train_acc},
          {"test_loss", r.test_loss},
          {"test_top1", r.test.top1},
          {"test_top5", r.test.top5},
          {"test_map", r.test.map},
          {"test_count", r.test.count},
          {"per_class_accuracy", nan_to_null(r.test.per_class_accuracy)},
          {"per_class_ap", nan_to_null(r.test.per_class_ap)},
          {"seconds", r.seconds},
          {"images_per_sec", r.images_per_sec}};
}

Trainer::Trainer(TrainConfig config, TrainerHooks hooks)
    : config_(std::move(config)),
      hooks_(std::move(hooks)),
      comm_(hooks_.comm ? hooks_.comm : &dist::world()) {
  config_.validate();
  AG_CHECK(hooks_.checkpoint_every_steps >= 0,
           "the checkpoint interval must be >= 0 steps, got " << hooks_.checkpoint_every_steps);
  device_ = rank_device(config_.device, *comm_);
  // Ranks share the machine's cores: one compute thread each unless --threads says otherwise.
  if (config_.threads > 0)
    set_num_threads(config_.threads);
  else if (comm_->size() > 1)
    set_num_threads(1);
  // Fails here, naming the missing CPU feature, rather than at the first convolution.
  precision_ = std::make_unique<MatmulPrecisionGuard>(parse_matmul_precision(config_.precision));
  const bool have = checkpoint_exists(config_.out);
  if (config_.resume && !have)
    throw UsageError("--resume: no checkpoint in '" + config_.out +
                     "' to continue (run without --resume to start)");
  if (!config_.resume && have)
    throw UsageError(
        "--out '" + config_.out +
        "' already holds a run (checkpoint.safetensors); pass --resume to continue it, or choose "
        "another --out");
  manual_seed(config_.seed);  // the initialisation draws from it; a resume then restores its state
  setup_data();
  net_ = make_classifier(config_, data_.test->channels(), data_.test->num_classes(), steps_per_epoch_);
  net_->to(device_);
  setup_optimization();
  if (config_.resume)
    restore();
  else
    prepare_folder();
  // Identical replicas: the seed already makes them so (and every rank loads the same
  // checkpoint); rank 0's weights are sent anyway, as DDP does, so that nothing else can differ.
  broadcast_module(*net_, *comm_);
  if (comm_->size() > 1 && config_.sync_bn) {
    // Batch-norm statistics over the global batch (they use dist::world(), the world this
    // run's communicator must then be).
    AG_CHECK(comm_ == &dist::world(), "--sync-bn needs the trainer to run on dist::world()");
    const int layers = use_sync_batch_norm(*net_);
    log() << "sync batch norm: " << layers << " layers use the global batch's statistics\n";
  }
  if (comm_->size() > 1) {
    // Gradients of CUDA parameters go through NCCL where the build has it.
    dist::Communicator& grads = hooks_.comm ? *hooks_.comm : dist::world_for(device_);
    dist::ReducerOptions options;
    options.broadcast_parameters = false;  // done above, with the buffers
    reducer_ = std::make_unique<dist::GradientReducer>(grads, net_->parameters(), options);
  }
}

Trainer::~Trainer() = default;

std::ostream& Trainer::log() const {
  if (!is_root()) return null_stream();
  return hooks_.log ? *hooks_.log : std::cout;
}

bool Trainer::stop_requested() const { return stop_.load() || sigint_received(); }

void Trainer::setup_data() {
  data_ =
      hooks_.train_set ? wrap_run_data(config_, hooks_.train_set, hooks_.test_set) : open_run_data(config_);
  AG_CHECK(data_.train->num_classes() == data_.test->num_classes(),
           "the training set has " << data_.train->num_classes() << " classes but the test set "
                                   << data_.test->num_classes());
  AG_CHECK(data_.train->size() >= config_.batch_size, "--batch-size " << config_.batch_size
                                                                      << " is larger than the training set ("
                                                                      << data_.train->size() << " images)");
  const int ranks = comm_->size();
  if (config_.batch_size % ranks != 0)
    throw UsageError("--batch-size " + std::to_string(config_.batch_size) + " is the global batch, which " +
                     std::to_string(ranks) + " ranks share equally: make it a multiple of " +
                     std::to_string(ranks));
  LoaderOptions train_options;
  train_options.batch_size = config_.batch_size;  // global: this rank loads its B/N shard
  train_options.rank = comm_->rank();
  train_options.world = ranks;
  train_options.shuffle = true;
  train_options.drop_last = true;  // a last batch of 1 would break batch norm; every step is full-size
  train_options.seed = config_.seed;
  train_options.num_workers = config_.workers;
  train_loader_ =
      std::make_unique<DataLoader>(data_.train, train_transform_for(config_, data_.stats), train_options);
  LoaderOptions test_options;
  test_options.batch_size = config_.eval_batch_size * ranks;  // each rank scores eval_batch_size
  test_options.rank = comm_->rank();
  test_options.world = ranks;
  test_options.shuffle = false;
  test_options.num_workers = config_.workers;
  test_loader_ = std::make_unique<DataLoader>(data_.test, eval_transform(data_.stats), test_options);
  steps_per_epoch_ = train_loader_->num_batches();
}

void Trainer::setup_optimization() {
  const optim::NamedTensors params = net_->named_parameters();
  if (config_.optimizer == "adamw") {
    optim::AdamWOptions o;
    o.lr = config_.lr;
    o.weight_decay = config_.wd;
    o.exclude_1d_from_decay = !config_.decay_1d;
    optimizer_ = std::make_unique<optim::AdamW>(params, o);
  } else {
    optim::SgdOptions o;
    o.lr = config_.lr;
    o.momentum = config_.momentum;
    o.nesterov = config_.nesterov;
    o.weight_decay = config_.wd;
    o.exclude_1d_from_decay = !config_.decay_1d;
    optimizer_ = std::make_unique<optim::SGD>(params, o);
  }
  const int64_t total = config_.epochs * steps_per_epoch_;
  const auto warmup =
      static_cast<int64_t>(std::llround(config_.warmup_epochs * static_cast<double>(steps_per_epoch_)));
  schedule_ = optim::make_schedule(config_.schedule, config_.lr, total, warmup);
}

void Trainer::prepare_folder() {
  if (!is_root()) return;
  std::error_code ec;
  fs::create_directories(config_.out, ec);
  AG_CHECK(fs::is_directory(config_.out),
           "cannot create the run folder '" << config_.out << "': " << ec.message());
  // A fresh run starts fresh metrics files (left over from a run whose checkpoint was removed).
  fs::remove(fs::path(config_.out) / "metrics.jsonl");
  fs::remove(fs::path(config_.out) / "metrics.csv");
  const std::string text = config_.to_json().dump(2) + "\n";
  serialize::write_file_atomic((fs::path(config_.out) / "config.json").string(), text);
  log() << "run folder: " << config_.out << "\nconfig: " << text << "data: " << data_.description << "\n"
        << "model: " << net_->describe() << ", " << net_->parameter_count() << " parameters, "
        << steps_per_epoch_ << " steps per epoch, schedule " << schedule_->describe() << "\n";
  if (comm_->size() > 1)
    log() << "data parallel: " << comm_->size() << " ranks (" << comm_->backend() << "), "
          << config_.batch_size / comm_->size() << " images per rank and step\n";
}

void Trainer::restore() {
  // The configuration first: a different model would otherwise fail as a list of shape mismatches.
  const TrainConfig saved = TrainConfig::from_json(read_checkpoint_state(config_.out).config);
  const std::string conflict = resume_conflict(saved, config_);
  AG_CHECK(conflict.empty(),
           "the checkpoint in '" << config_.out << "' was made with another configuration: " << conflict);
  if (is_root()) serialize::remove_stale_temporaries(config_.out);  // of a process killed mid-save
  TrainState state = load_checkpoint(config_.out, *net_, optimizer_.get());
  epoch_ = state.epoch;
  step_ = state.step;
  global_generator().set_state(state.global_rng);
  const std::string what = "the checkpoint in '" + config_.out + "'";
  resumed_sums_ = partial_epoch_sums(state.extra, what);
  int64_t expected_step = 0;  // epoch * steps per epoch + batches, unless that overflows
  const bool fits = !__builtin_mul_overflow(epoch_, steps_per_epoch_, &expected_step) &&
                    !__builtin_add_overflow(expected_step, resumed_sums_.batches, &expected_step);
  AG_CHECK(fits && step_ == expected_step, what << " is at step " << step_ << ", which does not fit epoch "
                                                << epoch_ << " + " << resumed_sums_.batches << " batches of "
                                                << steps_per_epoch_ << " steps per epoch");
  finished_before_ = epoch_ >= config_.epochs && resumed_sums_.batches == 0;
  const std::string text = config_.to_json().dump(2) + "\n";
  if (is_root()) {
    truncate_metrics(config_.out, epoch_);
    serialize::write_file_atomic((fs::path(config_.out) / "config.json").string(), text);
  }
  log() << "resuming " << config_.out << " at epoch " << epoch_ << ", step " << step_
        << (resumed_sums_.batches ? " (batch " + std::to_string(resumed_sums_.batches) + " of the epoch)"
                                  : "")
        << "\nconfig: " << text << "data: " << data_.description << "\n";
  if (saved.epochs != config_.epochs)
    log() << "note: --epochs changed from " << saved.epochs << " to " << config_.epochs << ": the "
          << config_.schedule << " schedule is laid over the new total, so this is not the run the first "
          << "configuration would have given\n";
  const int64_t saved_ranks =
      state.extra.contains("ranks") ? serialize::json_int64_field(state.extra, "ranks", what) : 1;
  if (saved_ranks != comm_->size())
    log() << "note: the checkpoint was saved by " << saved_ranks << " rank(s), this run has " << comm_->size()
          << ": the batches are the same, the numbers only approximately (another reduction order, and "
          << "batch-norm statistics over other shards unless --sync-bn)\n";
}

EvalResult Trainer::evaluate(double* mean_loss) {
  // The margin of the test loss is the one of the next step, whether or not this process
  // ran the steps before (a resumed run has not).
  net_->criterion().set_step(step_);
  broadcast_buffers(*net_, *comm_);  // every rank scores with rank 0's batch-norm statistics
  return evaluate_classifier(*net_, *test_loader_, device_, mean_loss, comm_);
}

void Trainer::check_parameters_finite(const char* when) const {
  for (const auto& [name, p] : net_->named_parameters()) {
    for (double v : p.to_vector())
      if (!std::isfinite(v))
        throw TrainingDiverged("parameter '" + name + "' became non-finite at step " + std::to_string(step_) +
                               " (" + when + "); the last good checkpoint in '" + config_.out +
                               "' is kept; lower --lr or --s");
  }
}

Tensor Trainer::upload(const Tensor& images) {
  if (!device_.is_cuda()) return images.to(device_);
  if (!staging_.defined() || staging_.shape() != images.shape() || staging_.dtype() != images.dtype())
    staging_ = cuda::empty_pinned(images.shape(), images.dtype());
  staging_.copy_(images);
  return staging_.to(device_);  // completes before returning, so staging_ may be refilled next step
}

void Trainer::train_step(const Batch& batch, EpochSums& sums) {
  if (comm_->size() > 1) {
    // Dropout and drop-path draw from the global generator, which is the same on every rank:
    // each rank would repeat the others' masks on its shard. A stream per (step, rank)
    // instead: independent masks, and a resumed run draws the very same ones.
    constexpr uint64_t kRankStepStream = 0xd15;
    global_generator() = Generator(config_.seed)
                             .fork(kRankStepStream)
                             .fork(static_cast<uint64_t>(step_))
                             .fork(static_cast<uint64_t>(comm_->rank()));
  }
  optimizer_->set_lr(schedule_->lr(step_));
  net_->criterion().set_step(step_);
  Tensor input;  // the batch's images [N, C, H, W] on device_
  {
    profiler::PhaseScope other(profiler::Phase::other);
    profiler::Scope scope("upload to device");
    input = upload(batch.images);
  }
  Tensor features = net_->features(input);
  Tensor loss = net_->criterion().loss(features, batch.labels);
  int64_t correct = 0;
  {
    NoGradGuard no_grad;
    const std::vector<int64_t> predicted = argmax(net_->criterion()(features), 1).to_labels();
    const std::vector<int64_t> labels = batch.labels.to_labels();
    for (size_t i = 0; i < labels.size(); ++i) correct += predicted[i] == labels[i];
  }
  // Over all ranks' shards (a non-finite loss on any rank makes the sum non-finite, so every
  // rank stops here together); value: the mean over the global batch.
  double images = static_cast<double>(batch.labels.size(0)), hits = static_cast<double>(correct);
  double loss_sum = loss.item() * images;
  reduce_step_sums(images, hits, loss_sum);
  const double value = loss_sum / images;
  if (!std::isfinite(value)) {
    std::ostringstream os;
    os << "the loss is " << value << " at step " << step_ + 1 << " (epoch " << epoch_ + 1 << ", batch "
       << batch.index + 1 << " of " << steps_per_epoch_ << "); training stopped. ";
    if (epoch_ > 0)
      os << "The last good checkpoint (epoch " << epoch_ << ") in '" << config_.out << "' is kept.";
    else
      os << "No checkpoint was written (the first epoch had not ended).";
    os << " Lower --lr or --s, or add --warmup.";
    throw TrainingDiverged(os.str());
  }
  profiler::PhaseScope other(profiler::Phase::other);
  {
    profiler::Scope scope("optimizer zero_grad");
    optimizer_->zero_grad();
  }
  // Each rank: the gradient of its shard's mean loss; the reducer's hooks start allreducing
  // buckets of them as they become final (run_backward times its nodes in the phase backward).
  loss.backward();
  if (reducer_) {
    // The mean over ranks of the shard means: the gradient of the global batch's mean loss.
    profiler::Scope scope("gradient allreduce (wait)");
    reducer_->finish();
  }
  {
    profiler::Scope scope("optimizer step");
    optimizer_->step();
  }
  ++step_;
  profiler::mark_step();
  sums.batches += 1;
  sums.seen += static_cast<int64_t>(images);
  sums.correct += static_cast<int64_t>(hits);
  sums.loss_sum += loss_sum;
}

void Trainer::reduce_step_sums(double& images, double& correct, double& loss_sum) {
  if (comm_->size() == 1) return;
  double v[3] = {images, correct, loss_sum};
  comm_->allreduce_sum(v, 3);
  images = v[0];
  correct = v[1];
  loss_sum = v[2];
}

bool Trainer::stop_agreed() {
  double stop = stop_requested() ? 1 : 0;
  if (comm_->size() > 1) comm_->allreduce_sum(&stop, 1);
  return stop > 0;
}

std::optional<Batch> Trainer::next_train_batch() {
  profiler::PhaseScope other(profiler::Phase::other);
  profiler::Scope scope("data loader wait");
  return train_loader_->next();
}

bool Trainer::train_epoch(EpochSums& sums) {
  net_->train();
  train_loader_->start_epoch(epoch_, sums.batches);
  std::unique_ptr<ProgressBar> bar;
  if (config_.progress != "off" && is_root()) {
    std::ostringstream label;
    label << "epoch " << epoch_ + 1 << "/" << config_.epochs;
    bar = std::make_unique<ProgressBar>(label.str(), steps_per_epoch_,
                                        progress_options(config_, hooks_.progress));
    bar->resume_at(sums.batches, sums.seen);  // nonzero when resumed mid-epoch
  }
  double last = now_seconds();  // the time per step includes waiting for the loader
  while (auto batch = next_train_batch()) {
    train_step(*batch, sums);
    const double now = now_seconds();
    sums.seconds += now - last;
    last = now;
    if (bar)
      bar->update(sums.batches, sums.seen, sums.loss_sum / static_cast<double>(sums.seen),
                  static_cast<double>(sums.correct) / static_cast<double>(sums.seen));
    if (hooks_.on_step) hooks_.on_step(step_);
    if (stop_agreed()) return false;
    const int64_t every = hooks_.checkpoint_every_steps;
    if (every > 0 && step_ % every == 0 && sums.batches < steps_per_epoch_) {
      profiler::PhaseScope other(profiler::Phase::other);
      profiler::Scope scope("checkpoint");
      save(&sums);
    }
  }
  return true;
}

EpochRecord Trainer::finish_epoch(const EpochSums& sums) {
  check_parameters_finite("end of an epoch");  // before evaluating: NaN scores would only confuse the metrics
  EpochRecord r;
  r.test = evaluate(&r.test_loss);
  ++epoch_;
  r.epoch = epoch_;
  r.step = step_;
  r.lr = schedule_->lr(std::max<int64_t>(step_ - 1, 0));
  r.train_loss = sums.loss_sum / static_cast<double>(sums.seen);
  r.train_acc = static_cast<double>(sums.correct) / static_cast<double>(sums.seen);
  r.seconds = sums.seconds;
  r.images_per_sec = sums.seconds > 0 ? static_cast<double>(sums.seen) / sums.seconds : 0;
  const fs::path dir(config_.out);
  if (is_root()) append_jsonl((dir / "metrics.jsonl").string(), epoch_record_to_json(r));
  if (is_root()) append_csv_row((dir / "metrics.csv").string(), kCsvColumns, csv_values(r));
  save(nullptr);
  log() << "epoch " << r.epoch << "/" << config_.epochs << ": train loss " << std::setprecision(4)
        << r.train_loss << " acc " << percent(r.train_acc) << " | test loss " << r.test_loss << " top-1 "
        << percent(r.test.top1) << " top-5 " << percent(r.test.top5) << " mAP " << percent(r.test.map)
        << " | " << std::setprecision(3) << r.seconds << " s, " << std::setprecision(4) << r.images_per_sec
        << " img/s\n";
  if (reducer_) log_communication(sums);
  return r;
}

void Trainer::log_communication(const EpochSums& sums) {
  const dist::ReducerStats& st = reducer_->stats();
  int64_t parameter_bytes = 0;
  for (const Tensor& p : net_->parameters())
    parameter_bytes += p.numel() * static_cast<int64_t>(dtype_size(p.dtype()));
  const double waited = st.total_wait_seconds - wait_at_epoch_start_;
  wait_at_epoch_start_ = st.total_wait_seconds;
  log() << "communication: " << std::setprecision(4) << static_cast<double>(st.bytes_last_step) / 1e6
        << " MB allreduced per step (parameters " << static_cast<double>(parameter_bytes) / 1e6 << " MB), "
        << st.buckets_started_in_backward << " of " << reducer_->bucket_count()
        << " buckets started during backward; rank 0 waited " << std::setprecision(3) << waited
        << " s for gradients this epoch (" << std::setprecision(3)
        << (sums.seconds > 0 ? 100 * waited / sums.seconds : 0) << "% of its " << sums.seconds << " s)\n";
}

void Trainer::save(const EpochSums* partial) {
  if (!is_root()) return;  // the replicas are identical: one writer
  TrainState st;
  st.epoch = epoch_;
  st.step = step_;
  st.global_rng = global_generator().state();
  st.config = config_.to_json();
  st.extra = {{"stats", stats_to_json(data_.stats)},
              {"class_names", data_.test->class_names()},
              {"image_shape", {data_.test->channels(), data_.test->height(), data_.test->width()}},
              {"finished", partial == nullptr && epoch_ >= config_.epochs},
              {"ranks", comm_->size()}};
  if (partial) st.extra["partial"] = partial_epoch_json(*partial);
  try {
    save_checkpoint(config_.out, *net_, optimizer_.get(), st);
  } catch (const Error& e) {
    throw Error(std::string("writing the checkpoint at step ") + std::to_string(step_) +
                " failed: " + e.what() + "; the previous checkpoint in '" + config_.out + "' is intact");
  }
}

std::vector<std::string> Trainer::make_plots(const EvalResult& last) {
  std::vector<std::string> written;
  if (!config_.plots || !is_root()) return written;
  if (!gnuplot_available()) {
    log() << "note: gnuplot not found, no plots (Debian: apt install gnuplot-nox)\n";
    return written;
  }
  const fs::path dir(config_.out);
  const std::string title = config_.dataset + " " + config_.model + " " + config_.loss.describe();
  try {
    plot_training_curves((dir / "curves.png").string(), read_metrics_csv((dir / "metrics.csv").string()),
                         title, {"train_loss", "test_loss"},
                         {"train_acc", "test_top1", "test_top5", "test_map"});
    written.push_back((dir / "curves.png").string());
    plot_confusion_matrix((dir / "confusion.png").string(), last.confusion, data_.test->class_names(),
                          title + ", test");
    written.push_back((dir / "confusion.png").string());
  } catch (const Error& e) {
    log() << "warning: plotting failed: " << e.what() << "\n";
  }
  return written;
}

void Trainer::start_profile() {
  name_layers_for_profile(*net_);
  profiler::Options options;
  options.synchronize_cuda = device_.is_cuda();
  profiler::start(options);
}

void Trainer::finish_profile() {
  profiler::stop();
  const std::string text = write_profile(config_.out, profiler::report());
  log() << "\n"
        << text << "profile written to " << (fs::path(config_.out) / "profile.txt").string()
        << " and profile.json\n";
}

TrainResult Trainer::run() {
  const double start = now_seconds();
  TrainResult result;
  if (finished_before_) {
    log() << "the run in '" << config_.out << "' already finished its " << epoch_ << " epochs\n";
    result.final_eval = evaluate();
  }
  const bool profile = hooks_.profile && epoch_ < config_.epochs;  // a finished run has no steps left
  if (profile) start_profile();
  struct StopProfilerOnThrow {  // a diverged run must not leave the process profiling
    bool on;
    ~StopProfilerOnThrow() {
      if (on && profiler::enabled()) profiler::stop();
    }
  } stop_profiler{profile};
  while (epoch_ < config_.epochs) {
    EpochSums sums = resumed_sums_;
    resumed_sums_ = {};
    if (!train_epoch(sums)) {
      if (profile) finish_profile();
      save(&sums);
      log() << "stopped at step " << step_ << " (epoch " << epoch_ + 1 << ", batch " << sums.batches << " of "
            << steps_per_epoch_ << "); checkpoint saved in '" << config_.out
            << "'; continue with --resume --out " << config_.out << "\n";
      result.status = TrainResult::Status::interrupted;
      break;
    }
    if (profile) profiler::pause();  // evaluation and the checkpoint are not steps
    result.epochs.push_back(finish_epoch(sums));
    if (profile) profiler::resume();
    result.final_eval = result.epochs.back().test;
  }
  if (profile && result.status == TrainResult::Status::finished) finish_profile();
  result.epochs_done = epoch_;
  result.steps = step_;
  if (result.status == TrainResult::Status::finished) result.plots = make_plots(result.final_eval);
  result.wall_seconds = now_seconds() - start;
  // No rank returns before rank 0 has written its last files (a caller may read them next).
  if (comm_->size() > 1) comm_->barrier();
  return result;
}

}  // namespace ag::train
