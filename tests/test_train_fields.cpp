// The settings table (apps/lib/train_fields.h) is the one source of train's flags, help,
// config.json and resume rules: every row has a flag, a help text and a JSON key, each
// reaches its member from the command line and through JSON, and config.json files
// written before the table load unchanged.
#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <set>

#include "apps/lib/train_config.h"
#include "apps/lib/train_fields.h"

using namespace ag;
using namespace ag::train;
using nlohmann::json;

namespace fs = std::filesystem;

namespace {

// A value other than the default for every setting, valid with the other defaults. A new
// row needs one here, or the first test case fails.
const std::map<std::string, json> kOtherValue = {
    {"dataset", "cifar100"},
    {"data-dir", "/data/c100"},
    {"cifar100-labels", "coarse"},
    {"train-subset", 7},
    {"test-subset", 5},
    {"subset", "first"},
    {"augment", false},
    {"cutout", 8},
    {"border", 2},
    {"model", "resnet18:width=0.25"},
    {"head", "cosine"},
    {"loss", "cosface"},
    {"s", 16.0},
    {"m", 0.3},
    {"m1", 2.0},
    {"m2", 0.1},
    {"m3", 0.2},
    {"alpha", 0.25},
    {"joint-margin", "cosface"},
    {"easy-margin", true},
    {"label-smoothing", 0.1},
    {"margin-warmup", 0.5},
    {"epochs", 3},
    {"batch-size", 64},
    {"optimizer", "adamw"},
    {"lr", 0.01},
    {"wd", 0.001},
    {"momentum", 0.5},
    {"nesterov", false},
    {"decay-1d", true},
    {"schedule", "step"},
    {"warmup", 0.5},
    {"precision", "bf16"},
    {"sync-bn", true},
    {"seed", 42},
    {"threads", 3},
    {"workers", 1},
    {"device", "cuda"},
    {"eval-batch-size", 100},
    {"out", "runs/y"},
    {"resume", true},
    {"progress", "off"},
    {"plots", false},
};

// `--name=value` as a user would type it.
std::string flag_arg(const std::string& flag, const json& v) {
  return "--" + flag + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
}

TrainConfig parse(const std::vector<std::string>& args) {
  Flags flags("train", "test");
  add_train_flags(flags);
  flags.parse(args);
  return config_from_flags(flags);
}

// config.json as the code before the settings table wrote it (every setting off its default).
const char* kOldConfigJson =
    R"json({"augment":false,"batch_size":64,"cifar100_labels":"coarse","cutout":8,"data_dir":"/data/c100",
"dataset":"cifar100","decay_1d":true,"device":"cpu","epochs":7,"eval_batch_size":100,"head":"auto",
"loss":{"alpha":0.25,"description":"joint(alpha=0.25, cosface, s=16, m=0.2, smoothing=0.1)",
"easy_margin":true,"joint_margin":"cosface","kind":"joint","label_smoothing":0.1,"m":0.2,"m1":1.0,
"m2":0.0,"m3":0.0,"s":16.0},"lr":0.003,"margin_warmup_epochs":1.5,"model":"resnet18:width=0.25",
"momentum":0.9,"nesterov":false,"optimizer":"adamw","out":"runs/x","plots":false,"progress":"lines",
"resume":true,"schedule":"onecycle","seed":42,"subset_mode":"first","test_subset":0,"threads":2,
"train_subset":500,"warmup_epochs":0.0,"wd":0.05,"workers":1})json";

}  // namespace

TEST_CASE("settings table: every row has a distinct flag, JSON key and help text") {
  std::set<std::string> flags, keys;
  for (const AnyField& f : train_fields()) {
    CAPTURE(std::string(flag_of(f)));
    CHECK(flags.insert(flag_of(f)).second);
    CHECK(keys.insert(key_of(f)).second);
    CHECK(std::string(help_of(f)).size() > 5);
    CHECK(std::string(key_of(f)).rfind('/', 0) == 0);
    CHECK(kOtherValue.count(flag_of(f)) == 1);
  }
  CHECK(flags.size() == kOtherValue.size());

  Flags registered("train", "test");
  add_train_flags(registered);
  const std::string usage = registered.usage();
  for (const AnyField& f : train_fields()) {
    CAPTURE(std::string(flag_of(f)));
    const std::string flag = std::string("--") + flag_of(f);
    CHECK((usage.find(flag + " ") != std::string::npos || usage.find(flag + ", --no-") != std::string::npos));
    CHECK(usage.find(std::string(help_of(f)) + " (default: ") != std::string::npos);
  }
  CHECK(usage.find("--lr NUMBER") != std::string::npos);
  CHECK(usage.find("base (peak) learning rate (default: 0.1)") != std::string::npos);
  CHECK(usage.find("--loss ce|normface|sphereface|cosface|arcface|combined|joint") != std::string::npos);
  CHECK(usage.find("--augment, --no-augment") != std::string::npos);
  CHECK(usage.find("(default: true)") != std::string::npos);
  CHECK(usage.find("--data-dir TEXT") != std::string::npos);
  CHECK(usage.find(" \n") == std::string::npos);  // no trailing blanks
}

TEST_CASE("settings table: each flag sets its own field and nothing else") {
  const json defaults = TrainConfig().to_json();
  for (const AnyField& f : train_fields()) {
    const json& value = kOtherValue.at(flag_of(f));
    CAPTURE(std::string(flag_of(f)));
    CAPTURE(value.dump());
    const json::json_pointer key(key_of(f));
    REQUIRE(defaults.at(key) != value);
    json expected = defaults;
    expected[key] = value;
    json got = parse({flag_arg(flag_of(f), value)}).to_json();
    expected["loss"].erase("description");
    got["loss"].erase("description");
    CHECK(got == expected);
  }
}

TEST_CASE("settings table: every field round-trips through config.json") {
  json every = TrainConfig().to_json();  // every setting off its default
  for (const AnyField& f : train_fields()) {
    const json::json_pointer key(key_of(f));
    const json& value = kOtherValue.at(flag_of(f));
    CAPTURE(std::string(flag_of(f)));
    json j = TrainConfig().to_json();
    j[key] = value;
    const TrainConfig back = TrainConfig::from_json(json::parse(j.dump()));
    CHECK(back.to_json().at(key) == value);
    j["loss"]["description"] = back.loss.describe();
    CHECK(back.to_json() == j);  // and nothing else moved
    every[key] = value;
  }
  const TrainConfig all = TrainConfig::from_json(every);
  const json written = all.to_json();
  CHECK(TrainConfig::from_json(json::parse(written.dump())).to_json() == written);
  CHECK(written["loss"]["description"] == all.loss.describe());
}

TEST_CASE("settings table: config.json written before the table loads unchanged") {
  const json old = json::parse(kOldConfigJson);
  const TrainConfig c = TrainConfig::from_json(old);
  CHECK(c.dataset == "cifar100");
  CHECK(c.cifar100_labels == "coarse");
  CHECK(c.train_subset == 500);
  CHECK(c.subset_mode == "first");
  CHECK_FALSE(c.augment);
  CHECK(c.loss.kind == "joint");
  CHECK(c.loss.joint_margin == "cosface");
  CHECK(c.loss.alpha == 0.25);
  CHECK(c.loss.easy_margin);
  CHECK(c.margin_warmup_epochs == 1.5);
  CHECK(c.schedule == "onecycle");
  CHECK(c.seed == 42);
  CHECK(c.threads == 2);
  CHECK(c.resume);
  CHECK(c.progress == "lines");
  CHECK(c.precision == "fp32");  // runs from before --precision were float32
  json expected = old;
  expected["precision"] = "fp32";  // settings added since are written with their defaults
  expected["sync_bn"] = false;
  expected["border"] = 0;
  CHECK(c.to_json() == expected);  // otherwise the same keys, values and loss description
}

TEST_CASE("settings table: a resumed run may change exactly these settings") {
  std::set<std::string> resumable;
  for (const AnyField& f : train_fields())
    if (may_change_on_resume(f)) resumable.insert(flag_of(f));
  CHECK(resumable == std::set<std::string>{"epochs", "threads", "workers", "device", "out", "resume",
                                           "progress", "plots"});
  TrainConfig not_utf8;
  not_utf8.model = "\xff";  // a command line may hold any bytes
  CHECK(resume_conflict(TrainConfig(), not_utf8).find("--model was \"resnet20\", now ") == 0);
  const TrainConfig saved = parse({"--out", "runs/x"});
  for (const AnyField& f : train_fields()) {
    const json value = kOtherValue.at(flag_of(f));
    json j = saved.to_json();
    j[json::json_pointer(key_of(f))] = value;
    const TrainConfig now = TrainConfig::from_json(j);
    CAPTURE(std::string(flag_of(f)));
    CHECK(resume_conflict(saved, now).empty() == may_change_on_resume(f));
    Flags flags("train", "test");
    add_train_flags(flags);
    flags.parse({"--out", "runs/x", "--resume", flag_arg(flag_of(f), value)});
    if (may_change_on_resume(f) && std::string(flag_of(f)) != "out" && std::string(flag_of(f)) != "resume")
      CHECK(merge_resume_flags(saved, flags).to_json().at(json::json_pointer(key_of(f))) == value);
    else if (!may_change_on_resume(f))
      CHECK_THROWS_WITH_AS(merge_resume_flags(saved, flags),
                           doctest::Contains(("--" + std::string(flag_of(f)) + " ").c_str()), UsageError);
  }
}

TEST_CASE("settings table: a resumed run may name its data folder another way") {
  const fs::path dir = fs::temp_directory_path() / "arcgrad_resume_data_dir" / "data";
  fs::create_directories(dir);
  const TrainConfig saved = parse({"--out", "runs/x", "--data-dir", dir.string()});
  Flags flags("train", "test");
  add_train_flags(flags);
  flags.parse({"--out", "runs/x", "--resume", "--data-dir", (dir / ".." / "data").string()});
  CHECK(merge_resume_flags(saved, flags).data_dir == dir.string());  // the saved spelling is kept
  Flags other("train", "test");
  add_train_flags(other);
  other.parse({"--out", "runs/x", "--resume", "--data-dir", dir.parent_path().string()});
  CHECK_THROWS_WITH_AS(merge_resume_flags(saved, other), doctest::Contains("--data-dir "), UsageError);
  fs::remove_all(dir.parent_path());
}

TEST_CASE("settings table: ranges and choices name the flag, from the command line and from JSON") {
  auto error = [](const std::vector<std::string>& args) {
    try {
      parse(args);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error({"--seed", "-2"}) == "--seed must be >= 0, got -2 (see --help)");
  CHECK(error({"--threads=99999999999"}) == "--threads must lie in [0, 1024], got 99999999999 (see --help)");
  CHECK(error({"--workers", "65"}) == "--workers must lie in [0, 64], got 65 (see --help)");
  CHECK(error({"--momentum", "1"}) == "--momentum must lie in [0, 1), got 1 (see --help)");
  CHECK(error({"--lr", "0"}) == "--lr must be > 0, got 0 (see --help)");
  CHECK(error({"--model", ""}) == "--model must not be empty, got \"\" (see --help)");
  CHECK(error({"--loss", "focal"}).find("--loss: 'focal' is not one of ce, normface") == 0);
  CHECK(error({"--precision", "fp16"}).find("--precision: 'fp16' is not one of fp32, bf16") == 0);
  CHECK(error({"--precision", "bf16", "--device", "cuda"}).find("--precision bf16 runs on the CPU only") ==
        0);

  TrainConfig c;
  c.dataset = "imagenet";
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("--dataset must be one of cifar10|cifar100"),
                       UsageError);
  c = TrainConfig();
  c.warmup_epochs = -1;
  CHECK_THROWS_WITH_AS(c.validate(), "--warmup must be >= 0, got -1 (see --help)", UsageError);

  auto json_error = [](const json& j) {
    try {
      TrainConfig::from_json(j);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(
      json_error({{"epochs", "ten"}}).find("field 'epochs' is malformed (string \"ten\" is not an integer") !=
      std::string::npos);
  CHECK(json_error({{"epochs", 2.5}}).find("field 'epochs' is malformed") != std::string::npos);
  CHECK(json_error({{"threads", 1e12}}).find("field 'threads'") != std::string::npos);
  CHECK(json_error({{"threads", int64_t{1} << 40}}).find("field 'threads'") != std::string::npos);
  CHECK(json_error({{"seed", -1}}).find("field 'seed'") != std::string::npos);
  CHECK(json_error({{"augment", 1}}).find("field 'augment'") != std::string::npos);
  CHECK(json_error({{"loss", {{"s", "big"}}}}).find("field 'loss/s'") != std::string::npos);
  CHECK(json_error({{"loss", 3}}).find("field 'loss' is not a JSON object") != std::string::npos);
  CHECK(json_error(json::array()).find("expected a JSON object") != std::string::npos);
  CHECK(json_error({{"unknown_key", 1}, {"lr", 0.5}}) == "no error");  // later versions may add keys
}
