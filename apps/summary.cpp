// summary: prints a model's layers (torchinfo style): each layer's output shape,
// parameters and multiply-accumulates (convolutions and linear layers), with totals.
//
// Run:
//   summary --model resnet18 --classes 10
//   summary --model mobilenetv2:width=0.5 --classes 100 --depth 2
//   summary --model efficientnet_b0 --head none --size 32 --batch 1 --depth 4
//   summary --list                                  # the model names and knobs
// Expected: resnet18 / 10 classes ends with "Total params: 11,173,962" and
// "Total MACs: 555,422,720"; mobilenetv2 2,236,682 and 87,976,448; efficientnet_b0
// 4,020,358 and 31,979,392.
#include "models/summary.h"

#include <cstdio>
#include <iostream>
#include <string>

#include "apps/lib/app_main.h"
#include "models/factory.h"

using namespace ag::train;

namespace {

Flags make_flags() {
  Flags f("summary", "Prints a model's layers with output shapes, parameters and multiply-accumulates.");
  f.add_string("model", "resnet18", "model spec: NAME[:knob=value,...] (see --list)");
  f.add_int("classes", 10, "number of classes");
  f.add_string("head", "linear", "classifier head (see --list)");
  f.add_int("batch", 1, "batch size of the input");
  f.add_int("size", 32, "input height and width in pixels");
  f.add_int("depth", 3, "nesting depth of the rows shown");
  f.add_bool("list", false, "print the model names, knobs and heads instead");
  return f;
}

void print_names() {
  std::printf("models:");
  for (const std::string& n : ag::model_names()) std::printf(" %s", n.c_str());
  std::printf("\nknobs (name:knob=value,...): width, depth, dropout, drop_path, in_channels\nheads:");
  for (const std::string& h : ag::head_names()) std::printf(" %s", h.c_str());
  std::printf("\n");
}

int main_body(const Flags& flags) {
  if (flags.get_bool("list")) {
    print_names();
    return 0;
  }
  for (const char* name : {"classes", "batch", "size"})
    if (flags.get_int(name) < 1) flags.fail(name, "must be >= 1, got " + std::to_string(flags.get_int(name)));
  if (flags.get_int("depth") < 0 || flags.get_int("depth") > 64) flags.fail("depth", "must lie in [0, 64]");
  const std::string spec = flags.get_string("model"), head = flags.get_string("head");
  const int64_t classes = flags.get_int("classes"), size = flags.get_int("size");
  ag::ModelOptions options;
  ag::ModelPtr model = ag::make_model(spec, classes, head, options);
  ag::parse_model_spec(spec, options);
  const ag::ModelSummary s = ag::summarize(*model, {flags.get_int("batch"), options.in_channels, size, size});
  std::printf("%s, %s head, %lld classes: %s\n", spec.c_str(), head.c_str(), static_cast<long long>(classes),
              model->describe().c_str());
  std::cout << ag::format_summary(s, static_cast<int>(flags.get_int("depth")));
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return run_app(argc, argv, make_flags, main_body); }
