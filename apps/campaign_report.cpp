// campaign_report: regenerates the results of a training campaign from its run folders
// (scripts/reproduce_full.sh calls it after every run): Markdown tables in the paper's
// layout with mean +- standard deviation over seeds, one line per run with its training
// and wall times and the machine's load, and a plot of test top-1 against the margin m
// wherever the campaign has at least two margins of one loss.
//
// Run:
//   campaign_report --root ~/arcgrad-runs                   # writes ROOT/results.md
//   campaign_report --root ~/arcgrad-runs --out docs/x.md --plots=false
// Output: the Markdown (also printed) and ROOT/<dataset>_e<epochs>_accuracy_vs_m.png.
// Folders that cannot be read are listed in the report, not fatal.
// Exit status: 0 done, 1 error (no such root), 2 bad command line.
#include <filesystem>
#include <iostream>

#include "apps/lib/app_main.h"
#include "apps/lib/campaign.h"
#include "core/serialize/atomic_file.h"

using namespace ag::train;
namespace fs = std::filesystem;

Flags make_flags() {
  Flags f("campaign_report",
          "Tabulates a campaign's run folders: mean +- std over seeds, per-run times, m plots.");
  f.add_string("root", "", "campaign root folder (scripts/reproduce_full.sh --root)");
  f.add_string("out", "", "Markdown file to write (default: ROOT/results.md)");
  f.add_bool("plots", true, "draw the accuracy-vs-m plots next to the Markdown file (needs gnuplot)");
  return f;
}

int main_body(const Flags& flags) {
  const std::string root = flags.get_string("root");
  if (root.empty()) flags.fail("root", "must name the campaign's root folder");
  const fs::path out =
      flags.get_string("out").empty() ? fs::path(root) / "results.md" : fs::path(flags.get_string("out"));
  std::vector<std::string> problems;
  const std::vector<CampaignRun> runs = scan_campaign(root, problems);
  std::string text = campaign_markdown(runs, problems, root);
  const fs::path folder = out.has_parent_path() ? out.parent_path() : fs::path(".");
  if (flags.get_bool("plots") && gnuplot_available()) {
    for (const MarginSeries& s : campaign_margin_series(runs)) {
      const std::string png = s.key + "_accuracy_vs_m.png";
      plot_accuracy_vs_m((folder / png).string(), s.lines, s.title);
      text += "\n![" + s.title + "](" + png + ")\n";
    }
  }
  ag::serialize::write_file_atomic(out.string(), text);
  std::cout << text;
  return 0;
}

int main(int argc, char** argv) { return run_app(argc, argv, make_flags, main_body); }
