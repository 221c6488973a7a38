// Sweep grid expansion and report; see sweep.h.
#include "apps/lib/sweep.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>

#include "apps/lib/flags.h"

namespace ag::train {

namespace {

std::string number(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string display_name(const std::string& kind) {
  if (kind == "ce") return "cross-entropy";
  if (kind == "normface") return "NormFace";
  if (kind == "sphereface") return "SphereFace";
  if (kind == "cosface") return "CosFace";
  if (kind == "arcface") return "ArcFace";
  if (kind == "combined") return "combined margin";
  return kind;
}

// A file-name-safe form of a model spec: "mobilenetv2:width=0.5" -> "mobilenetv2_width0.5".
std::string slug(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == ':' || c == ',') {
      out += '_';
    } else if (c != '=') {
      out += c;
    }
  }
  return out;
}

// The row label and the folder name of one loss configuration.
void describe_loss(const MarginLossConfig& l, std::string& label, std::string& folder) {
  const std::string margin = l.margin_kind();
  std::ostringstream lab, dir;
  if (l.kind == "joint") {
    lab << "joint (alpha=" << l.alpha << ") CE + ";
    dir << "joint_a" << l.alpha << "_";
  }
  if (margin.empty()) {
    lab << display_name("ce");
    dir << "ce";
  } else {
    lab << display_name(margin) << " s=" << l.s;
    dir << margin << "_s" << l.s;
    if (margin == "combined") {
      lab << ", m1=" << l.m1 << ", m2=" << l.m2 << ", m3=" << l.m3;
      dir << "_m" << l.m1 << "-" << l.m2 << "-" << l.m3;
    } else if (margin != "normface") {
      lab << ", m=" << l.m;
      dir << "_m" << l.m;
    }
  }
  label = lab.str();
  folder = dir.str();
}

}  // namespace

std::string loss_table_header(const std::vector<std::string>& models) {
  std::string head = "| loss |", rule = "|---|";
  for (const std::string& m : models) head += " " + m + " |", rule += "---|";
  return head + "\n" + rule + "\n";
}

std::string loss_label(const MarginLossConfig& loss) {
  std::string label, folder;
  describe_loss(loss, label, folder);
  return label;
}

std::vector<std::string> split_list(const std::string& text, const std::string& what) {
  std::vector<std::string> items;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) throw UsageError("--" + what + ": empty item in '" + text + "' (see --help)");
    items.push_back(item);
  }
  if (items.empty()) throw UsageError("--" + what + ": needs at least one value (see --help)");
  return items;
}

std::vector<double> parse_number_list(const std::string& text, const std::string& what) {
  std::vector<double> values;
  for (const std::string& item : split_list(text, what)) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (*end != '\0' || !std::isfinite(v))
      throw UsageError("--" + what + ": '" + item + "' is not a number (see --help)");
    values.push_back(v);
  }
  return values;
}

std::vector<SweepPoint> expand_sweep(const SweepGrid& grid, const MarginLossConfig& base) {
  AG_CHECK(grid.data_dirs.empty() || grid.data_dirs.size() == grid.datasets.size(),
           "sweep: " << grid.data_dirs.size() << " data folders for " << grid.datasets.size() << " datasets");
  std::vector<SweepPoint> points;
  for (size_t d = 0; d < grid.datasets.size(); ++d) {
    for (const std::string& kind : grid.losses) {
      const std::string margin = kind == "joint" ? base.joint_margin : kind;
      const bool uses_s = kind != "ce", uses_m = kind != "ce" && margin != "normface" && margin != "combined";
      const std::vector<double> ss = uses_s ? grid.s_values : std::vector<double>{base.s};
      const std::vector<double> ms = uses_m ? grid.m_values : std::vector<double>{base.m};
      for (double s : ss) {
        for (double m : ms) {
          for (const std::string& model : grid.models) {
            SweepPoint p;
            p.dataset = grid.datasets[d];
            p.data_dir = grid.data_dirs.empty() ? "" : grid.data_dirs[d];
            p.model = model;
            p.loss = base;
            p.loss.kind = kind;
            p.loss.s = s;
            p.loss.m = m;
            std::string folder;
            describe_loss(p.loss, p.label, folder);
            p.folder = p.dataset + "/" + slug(model) + "/" + folder;
            points.push_back(p);
          }
        }
      }
    }
  }
  return points;
}

std::string sweep_markdown(const std::vector<SweepEntry>& entries, const std::string& notes) {
  std::vector<std::string> datasets;
  for (const SweepEntry& e : entries)
    if (std::find(datasets.begin(), datasets.end(), e.point.dataset) == datasets.end())
      datasets.push_back(e.point.dataset);
  std::ostringstream os;
  for (const std::string& dataset : datasets) {
    std::vector<std::string> models, rows;
    std::map<std::pair<std::string, std::string>, const SweepEntry*> cell;
    for (const SweepEntry& e : entries) {
      if (e.point.dataset != dataset) continue;
      if (std::find(models.begin(), models.end(), e.point.model) == models.end())
        models.push_back(e.point.model);
      if (std::find(rows.begin(), rows.end(), e.point.label) == rows.end()) rows.push_back(e.point.label);
      cell[{e.point.label, e.point.model}] = &e;
    }
    os << "### " << dataset << "\n\nTest top-1 / mAP (%)" << (notes.empty() ? "" : ", " + notes) << ".\n\n"
       << loss_table_header(models);
    for (const std::string& row : rows) {
      os << "| " << row << " |";
      for (const std::string& m : models) {
        auto it = cell.find({row, m});
        char buf[64];
        if (it == cell.end())
          std::snprintf(buf, sizeof buf, " - |");
        else if (it->second->diverged)
          std::snprintf(buf, sizeof buf, " diverged |");
        else
          std::snprintf(buf, sizeof buf, " %.2f / %.2f |", 100 * it->second->top1, 100 * it->second->map);
        os << buf;
      }
      os << "\n";
    }
    os << "\n";
  }
  return os.str();
}

std::vector<LineSeries> accuracy_vs_m_series(const std::vector<SweepEntry>& entries,
                                             const std::string& dataset) {
  std::map<std::string, LineSeries> lines;  // by name
  std::vector<std::string> order;
  double lo = INFINITY, hi = -INFINITY;
  for (const SweepEntry& e : entries) {
    const std::string margin = e.point.loss.margin_kind();
    if (e.point.dataset != dataset || e.diverged || margin.empty() || margin == "normface" ||
        margin == "combined")
      continue;
    const std::string name = e.point.model + " " + (e.point.loss.kind == "joint" ? "joint " : "") +
                             display_name(margin) + " s=" + number(e.point.loss.s);
    if (!lines.count(name)) order.push_back(name);
    LineSeries& s = lines[name];
    s.name = name;
    s.x.push_back(e.point.loss.m);
    s.y.push_back(100 * e.top1);
    lo = std::min(lo, e.point.loss.m);
    hi = std::max(hi, e.point.loss.m);
  }
  std::vector<LineSeries> out;
  for (const std::string& name : order) {
    LineSeries& s = lines[name];
    if (s.x.size() < 2) continue;
    std::vector<size_t> idx(s.x.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return s.x[a] < s.x[b]; });
    LineSeries sorted{s.name, {}, {}};
    for (size_t i : idx) sorted.x.push_back(s.x[i]), sorted.y.push_back(s.y[i]);
    out.push_back(sorted);
  }
  if (out.empty()) return out;
  for (const SweepEntry& e : entries)
    if (e.point.dataset == dataset && e.point.loss.kind == "ce" && !e.diverged)
      out.push_back({e.point.model + " cross-entropy", {lo, hi}, {100 * e.top1, 100 * e.top1}});
  return out;
}

}  // namespace ag::train
