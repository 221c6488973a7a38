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

#include "models/factory.h"

namespace {

struct Flags {
  std::string model = "resnet18";
  std::string head = "linear";
  int64_t classes = 10;
  int64_t batch = 1;
  int64_t size = 32;
  int depth = 3;
  bool list = false;
};

const char* kUsage =
    "flags: --model NAME[:knob=value,...] --classes N --head linear|cosine|none --batch N --size PIXELS "
    "--depth ROWS_DEPTH --list";

Flags parse(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--list") {
      f.list = true;
      continue;
    }
    if (flag == "--help" || flag == "-h") throw std::runtime_error(kUsage);
    if (i + 1 >= argc) throw std::runtime_error(flag + " needs a value; " + kUsage);
    const std::string value = argv[++i];
    if (flag == "--model")
      f.model = value;
    else if (flag == "--head")
      f.head = value;
    else if (flag == "--classes")
      f.classes = std::stoll(value);
    else if (flag == "--batch")
      f.batch = std::stoll(value);
    else if (flag == "--size")
      f.size = std::stoll(value);
    else if (flag == "--depth")
      f.depth = std::stoi(value);
    else
      throw std::runtime_error("unknown flag " + flag + "; " + kUsage);
  }
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Flags flags = parse(argc, argv);
    if (flags.list) {
      std::printf("models:");
      for (const std::string& n : ag::model_names()) std::printf(" %s", n.c_str());
      std::printf("\nknobs (name:knob=value,...): width, depth, dropout, drop_path, in_channels\nheads:");
      for (const std::string& h : ag::head_names()) std::printf(" %s", h.c_str());
      std::printf("\n");
      return 0;
    }
    ag::ModelOptions options;
    ag::ModelPtr model = ag::make_model(flags.model, flags.classes, flags.head, options);
    ag::parse_model_spec(flags.model, options);
    const ag::ModelSummary s =
        ag::summarize(*model, {flags.batch, options.in_channels, flags.size, flags.size});
    std::printf("%s, %s head, %lld classes: %s\n", flags.model.c_str(), flags.head.c_str(),
                static_cast<long long>(flags.classes), model->describe().c_str());
    std::cout << ag::format_summary(s, flags.depth);
  } catch (const std::exception& e) {
    std::cerr << "summary: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
