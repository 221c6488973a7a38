// The apps' flag parser (CLI11 underneath): forms, types, defaults, errors that name the
// flag, --help.
#include <doctest/doctest.h>

#include <functional>
#include <stdexcept>

#include "apps/lib/app_main.h"
#include "apps/lib/flags.h"

using namespace ag;
using namespace ag::train;

namespace {
Flags make() {
  Flags f("train", "Trains a classifier.");
  f.add_string("data-dir", "../shared/data", "dataset folder")
      .add_int("epochs", 10, "passes over the training set")
      .add_double("lr", 0.1, "learning rate")
      .add_bool("augment", true, "random crop and flip")
      .add_choice("loss", "ce", {"ce", "arcface"}, "training loss");
  return f;
}
}  // namespace

TEST_CASE("flags: defaults, both value forms, switches") {
  Flags f = make();
  f.parse({"--epochs", "3", "--lr=0.05", "--no-augment", "--loss", "arcface", "--data-dir=/tmp/x y"});
  CHECK(f.get_int("epochs") == 3);
  CHECK(f.get_double("lr") == 0.05);
  CHECK(!f.get_bool("augment"));
  CHECK(f.get_string("loss") == "arcface");
  CHECK(f.get_string("data-dir") == "/tmp/x y");
  CHECK(f.was_set("epochs"));
  CHECK(!f.help_requested());

  Flags g = make();
  g.parse({"--augment=false", "--augment", "--epochs=-2", "--lr", "-1e-3"});
  CHECK(g.get_bool("augment"));  // the later occurrence wins
  CHECK(g.get_int("epochs") == -2);
  CHECK(g.get_double("lr") == -1e-3);
  CHECK(g.get_string("loss") == "ce");

  Flags h = make();
  h.parse({"--epochs", "010"});
  CHECK(h.get_int("epochs") == 10);  // decimal, as written (CLI11 alone would read octal)
  CHECK(!g.was_set("loss"));
  const auto j = g.to_json();
  CHECK(j["epochs"] == -2);
  CHECK(j["augment"] == true);
  CHECK(j["data-dir"] == "../shared/data");
}

TEST_CASE("flags: usage errors name the flag") {
  auto err = [](std::vector<std::string> args) {
    Flags f = make();
    try {
      f.parse(args);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(err({"--epoch", "3"}) == "unknown flag --epoch (see --help)");
  CHECK(err({"--epochs", "three"}) == "--epochs: 'three' is not an integer (see --help)");
  CHECK(err({"--epochs", "3.5"}) == "--epochs: '3.5' is not an integer (see --help)");
  CHECK(err({"--lr", "fast"}) == "--lr: 'fast' is not a number (see --help)");
  CHECK(err({"--lr=inf"}) == "--lr: 'inf' is not a number (see --help)");
  CHECK(err({"--loss", "softmax"}) == "--loss: 'softmax' is not one of ce, arcface (see --help)");
  CHECK(err({"--augment=maybe"}) == "--augment: 'maybe' is not true or false (see --help)");
  CHECK(err({"--epochs"}) == "--epochs: needs a value (see --help)");
  CHECK(err({"--epochs", "--lr", "1"}) == "--epochs: needs a value (see --help)");
  CHECK(err({"data"}).find("unexpected argument 'data'") != std::string::npos);
  CHECK(err({"-e", "3"}).find("unexpected argument '-e'") != std::string::npos);
  CHECK(err({"--no-loss"}) == "unknown flag --no-loss (see --help)");
  Flags f = make();
  CHECK_THROWS_WITH_AS(f.fail("lr", "must be > 0"), "--lr: must be > 0 (see --help)", UsageError);
}

TEST_CASE("flags: --help and the usage text") {
  Flags f = make();
  f.parse({"--help"});
  CHECK(f.help_requested());
  const std::string u = f.usage();
  CHECK(u.find("usage: train [flags]") == 0);
  CHECK(u.find("Trains a classifier.") != std::string::npos);
  CHECK(u.find("--epochs INT") != std::string::npos);
  CHECK(u.find("passes over the training set (default: 10)") != std::string::npos);
  CHECK(u.find("--loss ce|arcface") != std::string::npos);
  CHECK(u.find("--augment, --no-augment") != std::string::npos);
  CHECK(u.find("random crop and flip (default: true)") != std::string::npos);
  CHECK(u.find("--data-dir TEXT") != std::string::npos);
  CHECK(u.find("dataset folder (default: ../shared/data)") != std::string::npos);
  CHECK(u.find("-h, --help") != std::string::npos);
}

TEST_CASE("flags: registration and lookup mistakes are programming errors") {
  Flags f = make();
  CHECK_THROWS_WITH_AS(f.add_int("epochs", 1, "again"), doctest::Contains("registered twice"), Error);
  CHECK_THROWS_WITH_AS(f.add_choice("opt", "adam", {"sgd"}, "x"), doctest::Contains("not one of its choices"),
                       Error);
  CHECK_THROWS_WITH_AS(f.get_int("lr"), doctest::Contains("not of the requested type"), Error);
  CHECK_THROWS_WITH_AS(f.get_int("nope"), doctest::Contains("no flag --nope"), Error);
}

TEST_CASE("flags: a moved Flags keeps its flags bound") {
  Flags a = make();
  Flags b(std::move(a));
  b.parse({"--epochs", "4", "--no-augment"});
  CHECK(b.get_int("epochs") == 4);
  CHECK(!b.get_bool("augment"));
  CHECK(b.was_set("epochs"));
  Flags c("other", "x");
  c = make();
  c.parse({"--lr=0.5"});
  CHECK(c.get_double("lr") == 0.5);
  CHECK(!c.was_set("epochs"));
}

TEST_CASE("flags: run_app exits 2 on a usage error, 0 after --help, 1 on any other error") {
  auto run = [](std::vector<std::string> args, std::function<int(const Flags&)> body) {
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    return run_app(static_cast<int>(argv.size()), argv.data(), make, body);
  };
  auto epochs = [](const Flags& f) { return static_cast<int>(f.get_int("epochs")); };
  CHECK(run({"train", "--epochs", "7"}, epochs) == 7);
  CHECK(run({"train", "--epoch", "7"}, epochs) == 2);
  CHECK(run({"train", "--epochs"}, epochs) == 2);
  CHECK(run({"train", "--lr", "fast"}, epochs) == 2);
  CHECK(run({"train", "--help"}, epochs) == 0);
  CHECK(run({"train"}, [](const Flags& f) -> int { f.fail("lr", "must be > 0"); }) == 2);
  CHECK(run({"train"}, [](const Flags&) -> int { throw std::runtime_error("disk full"); }) == 1);
}

TEST_CASE("flags: positional arguments only where allowed, in order, between the flags") {
  Flags f = make();
  f.allow_positional("IMAGES", "image files");
  f.parse({"a.png", "--epochs", "3", "b dir/", "--no-augment", "c.jpg"});
  CHECK(f.positional() == std::vector<std::string>{"a.png", "b dir/", "c.jpg"});
  CHECK(f.get_int("epochs") == 3);
  CHECK(!f.get_bool("augment"));
  const std::string u = f.usage();
  CHECK(u.find("usage: train [flags] IMAGES...\n") == 0);
  CHECK(u.find("\nIMAGES: image files\n") != std::string::npos);
  Flags none = make();
  none.allow_positional("IMAGES", "image files");
  none.parse({"--epochs", "3"});
  CHECK(none.positional().empty());
  Flags strict = make();
  CHECK_THROWS_WITH_AS(strict.parse({"a.png"}), doctest::Contains("unexpected argument 'a.png'"), UsageError);
  CHECK(strict.usage().find("usage: train [flags]\n") == 0);
}
