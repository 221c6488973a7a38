// gnuplot-driven PNG plots; see plots.h.
#include "apps/lib/plots.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <numbers>
#include <sstream>

#include "core/error.h"

extern char** environ;

namespace ag::train {

namespace {

namespace fs = std::filesystem;

// Matplotlib's tab10, so class colours look familiar.
const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
std::string color(size_t i) { return kColors[i % 10]; }

// A private temporary folder for the data and script, removed with everything in it.
class TempFolder {
 public:
  TempFolder() {
    std::string pattern = (fs::temp_directory_path() / "arcgrad_plot_XXXXXX").string();
    AG_CHECK(::mkdtemp(pattern.data()) != nullptr,
             "plot: cannot create a temporary folder: " << std::strerror(errno));
    path_ = pattern;
  }
  ~TempFolder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (fs::path(path_) / name).string(); }

 private:
  std::string path_;
};

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  AG_CHECK(out.good(), "plot: cannot write the temporary file '" << path << "'");
}

// A gnuplot single-quoted string (no escapes inside; a quote is doubled).
std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\n') continue;
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

std::string num(double v) {
  if (!std::isfinite(v)) return "NaN";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

// Runs `gnuplot script` with its output in log; returns the exit status, or -1 with
// errno ENOENT when gnuplot is not installed.
int spawn_gnuplot(const std::string& script, const std::string& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::string name = "gnuplot";
  std::string arg = script;
  char* argv[] = {name.data(), arg.data(), nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, "gnuplot", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    errno = rc;
    return -1;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -2;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

std::string read_tail(const std::string& path, size_t max_chars) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text.size() > max_chars ? "..." + text.substr(text.size() - max_chars) : text;
}

// The PNG terminal this gnuplot has ("" when there is no usable gnuplot); probed once.
const std::string& png_terminal() {
  static std::string terminal;
  static std::once_flag once;
  std::call_once(once, [] {
    TempFolder tmp;
    for (const char* t : {"pngcairo", "png"}) {
      write_text(tmp.file("probe.gp"), std::string("set terminal ") + t + "\n");
      if (spawn_gnuplot(tmp.file("probe.gp"), tmp.file("probe.log")) == 0) {
        terminal = t;
        return;
      }
    }
  });
  return terminal;
}

// Runs a plot script body (everything after the terminal/output lines) and moves the
// image to png.
void render(const std::string& png, const TempFolder& tmp, const std::string& body, int width, int height) {
  AG_CHECK(!png.empty(), "plot: empty output path");
  const fs::path target(png);
  AG_CHECK(target.parent_path().empty() || fs::is_directory(target.parent_path()),
           "plot '" << png << "': the folder " << target.parent_path() << " does not exist");
  const std::string& terminal = png_terminal();
  if (terminal.empty()) {
    const int rc = spawn_gnuplot("/dev/null", tmp.file("check.log"));
    AG_CHECK(rc != -1,
             "plot '" << png
                      << "': gnuplot was not found on PATH; install it (Debian: apt install gnuplot-nox) "
                      << "to get PNG plots");
    AG_FAIL("plot '" << png << "': this gnuplot can write neither pngcairo nor png images");
  }
  const std::string partial = png + ".partial";
  std::ostringstream script;
  script << "set terminal " << terminal << " size " << width << "," << height << " font 'sans,10'\n"
         << "set termoption noenhanced\n"
         << "set output " << quote(partial) << "\n"
         << body << "\nunset output\n";
  write_text(tmp.file("plot.gp"), script.str());
  const int rc = spawn_gnuplot(tmp.file("plot.gp"), tmp.file("plot.log"));
  if (rc != 0 || !fs::exists(partial) || fs::file_size(partial) == 0) {
    std::error_code ec;
    fs::remove(partial, ec);
    AG_FAIL("plot '" << png << "': gnuplot failed (exit status " << rc
                     << "): " << read_tail(tmp.file("plot.log"), 600));
  }
  fs::rename(partial, png);
}

}  // namespace

bool gnuplot_available() { return !png_terminal().empty(); }

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

size_t column_index(const MetricsTable& table, const std::string& name) {
  for (size_t j = 0; j < table.columns.size(); ++j)
    if (table.columns[j] == name) return j;
  AG_FAIL("plot_training_curves: no column '" << name << "' in the metrics table");
}

// plot clauses "'data' using x:y ..." for the given columns; scale 100 turns fractions into %.
std::string curve_clauses(const std::string& data, size_t x, const std::vector<size_t>& ys,
                          const MetricsTable& table, double scale) {
  std::string out = "plot ";
  for (size_t i = 0; i < ys.size(); ++i) {
    out += (i ? ", " : "") + quote(data) + " using " + std::to_string(x + 1) + ":($" +
           std::to_string(ys[i] + 1) + "*" + num(scale) + ") with linespoints pt 7 ps 0.6 lw 2 lc rgb '" +
           color(i) + "' title " + quote(table.columns[ys[i]]);
  }
  return out + "\n";
}
}  // namespace

void plot_training_curves(const std::string& png, const MetricsTable& table, const std::string& title,
                          std::vector<std::string> loss_columns, std::vector<std::string> accuracy_columns) {
  AG_CHECK(!table.rows.empty(), "plot_training_curves '" << png << "': the metrics table has no rows");
  const size_t x = column_index(table, "epoch");
  if (loss_columns.empty() && accuracy_columns.empty()) {
    for (const std::string& c : table.columns) {
      if (ends_with(c, "loss"))
        loss_columns.push_back(c);
      else if (contains(c, "acc") || contains(c, "top") || contains(c, "map"))
        accuracy_columns.push_back(c);
    }
  }
  AG_CHECK(!loss_columns.empty() || !accuracy_columns.empty(),
           "plot_training_curves '" << png << "': no loss or accuracy columns to plot");
  std::vector<size_t> left, right;
  for (const std::string& c : loss_columns) left.push_back(column_index(table, c));
  for (const std::string& c : accuracy_columns) right.push_back(column_index(table, c));
  TempFolder tmp;
  std::ostringstream data;
  for (const auto& row : table.rows) {
    for (size_t j = 0; j < row.size(); ++j) data << (j ? " " : "") << num(row[j]);
    data << "\n";
  }
  write_text(tmp.file("curves.dat"), data.str());
  const int panels = (left.empty() ? 0 : 1) + (right.empty() ? 0 : 1);
  std::ostringstream body;
  body << "set multiplot layout 1," << panels << " title " << quote(title) << "\n"
       << "set grid\nset xlabel 'epoch'\nset key outside bottom center horizontal\n"
       << "set autoscale xfix\nset offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05\n";
  if (table.rows.size() <= 20) body << "set xtics 1\n";  // whole epochs only
  // The offsets' margins may not push an axis past what its quantity can be (below 0, above 100%).
  if (!left.empty())
    body << "set ylabel 'loss'\nset yrange [0<*:*]\n"
         << curve_clauses(tmp.file("curves.dat"), x, left, table, 1.0);
  if (!right.empty())
    body << "set ylabel 'accuracy (%)'\nset yrange [0<*:*<100]\n"
         << curve_clauses(tmp.file("curves.dat"), x, right, table, 100.0);
  body << "unset multiplot";
  render(png, tmp, body.str(), 560 * panels + 80, 480);
}

void plot_confusion_matrix(const std::string& png, const std::vector<std::vector<int64_t>>& confusion,
                           const std::vector<std::string>& class_names, const std::string& title) {
  const size_t c = confusion.size();
  AG_CHECK(c >= 1, "plot_confusion_matrix '" << png << "': empty confusion matrix");
  AG_CHECK(class_names.size() == c, "plot_confusion_matrix '" << png << "': " << class_names.size()
                                                              << " class names for " << c << " classes");
  TempFolder tmp;
  std::ostringstream data;
  for (const auto& row : confusion) {
    AG_CHECK(row.size() == c, "plot_confusion_matrix '" << png << "': the matrix is not square");
    int64_t total = 0;
    for (int64_t v : row) total += v;
    for (size_t j = 0; j < c; ++j) data << (j ? " " : "") << num(total ? 100.0 * row[j] / total : 0.0);
    data << "\n";
  }
  write_text(tmp.file("confusion.dat"), data.str());
  std::ostringstream tics;
  if (c <= 20) {
    tics << "(";
    for (size_t i = 0; i < c; ++i) tics << (i ? ", " : "") << quote(class_names[i]) << " " << i;
    tics << ")";
  }
  const std::string d = quote(tmp.file("confusion.dat"));
  std::ostringstream body;
  body << "set title " << quote(title) << "\nset xlabel 'predicted'\nset ylabel 'true'\n"
       << "set xrange [-0.5:" << c - 0.5 << "]\nset yrange [" << c - 0.5 << ":-0.5]\n"
       << "set cbrange [0:100]\nset cblabel '% of the true class'\n"
       << "set palette defined (0 '#ffffff', 50 '#6baed6', 100 '#08306b')\nset tics nomirror\n";
  if (c <= 20) body << "set xtics " << tics.str() << " rotate by 45 right\nset ytics " << tics.str() << "\n";
  body << "plot " << d << " matrix with image notitle";
  if (c <= 12) body << ", " << d << " matrix using 1:2:(sprintf('%.0f', $3)) with labels notitle";
  const int side = static_cast<int>(std::min<size_t>(1400, 480 + 16 * c));
  render(png, tmp, body.str(), side + 120, side);
}

void plot_lines(const std::string& png, const std::vector<LineSeries>& series, const std::string& title,
                const std::string& x_label, const std::string& y_label) {
  AG_CHECK(!series.empty(), "plot_lines '" << png << "': no series");
  TempFolder tmp;
  std::ostringstream data;
  for (const LineSeries& s : series) {
    AG_CHECK(s.x.size() == s.y.size() && !s.x.empty(), "plot_lines '" << png << "': series '" << s.name
                                                                      << "' has " << s.x.size() << " x and "
                                                                      << s.y.size() << " y values");
    for (size_t i = 0; i < s.x.size(); ++i) data << num(s.x[i]) << " " << num(s.y[i]) << "\n";
    data << "\n\n";  // two blank lines end a gnuplot data block (selected with index)
  }
  write_text(tmp.file("lines.dat"), data.str());
  std::ostringstream body;
  body << "set title " << quote(title) << "\nset xlabel " << quote(x_label) << "\nset ylabel "
       << quote(y_label) << "\nset grid\nset key outside right\n"
       << "set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05\nplot ";
  for (size_t i = 0; i < series.size(); ++i)
    body << (i ? ", " : "") << quote(tmp.file("lines.dat")) << " index " << i
         << " using 1:2 with linespoints pt 7 lw 2 lc rgb '" << color(i) << "' title "
         << quote(series[i].name);
  render(png, tmp, body.str(), 800, 480);
}

namespace {
// The clauses and arrows of one embedding panel; data files go into tmp.
std::string embedding_panel(const EmbeddingPanel& p, size_t index, const TempFolder& tmp,
                            const std::string& png) {
  const std::string where = "plot_embeddings '" + png + "' panel '" + p.title + "'";
  AG_CHECK(p.features.defined() && p.features.dim() == 2 && p.features.size(1) == 2,
           where << ": features must be [N, 2], got "
                 << (p.features.defined() ? p.features.describe() : "undefined"));
  AG_CHECK(p.labels.defined() && p.labels.dtype() == DType::i64 && p.labels.dim() == 1 &&
               p.labels.size(0) == p.features.size(0),
           where << ": labels must be int64 [" << p.features.size(0) << "]");
  const int64_t classes = static_cast<int64_t>(p.class_names.size());
  AG_CHECK(
      p.weights.defined() && p.weights.dim() == 2 && p.weights.size(0) == classes && p.weights.size(1) == 2,
      where << ": weights must be [" << classes << ", 2] (one row per class name)");
  const auto f = p.features.to_vector();
  const auto w = p.weights.to_vector();
  const auto y = p.labels.to_labels();
  std::vector<std::ostringstream> per_class(classes);
  for (size_t i = 0; i < y.size(); ++i) {
    AG_CHECK(y[i] >= 0 && y[i] < classes, where << ": label " << y[i] << " outside [0, " << classes << ")");
    // Each feature's direction, drawn at a radius spread over [0.9, 1.1] (a fixed
    // low-discrepancy sequence, so the plot is reproducible): on the bare circle a few
    // outliers and a dense arc look alike; in a band the density shows.
    const double r = std::hypot(f[2 * i], f[2 * i + 1]);
    const double band = 0.9 + 0.2 * std::fmod(0.5 + static_cast<double>(i) * 0.6180339887498949, 1.0);
    if (r > 0) per_class[y[i]] << num(band * f[2 * i] / r) << " " << num(band * f[2 * i + 1] / r) << "\n";
  }
  std::ostringstream body;
  body << "set title " << quote(p.title) << "\nunset arrow\n";
  for (int64_t c = 0; c < classes; ++c) {
    const double r = std::hypot(w[2 * c], w[2 * c + 1]);
    if (r == 0) continue;
    // The direction only, drawn a little past the circle.
    body << "set arrow " << c + 1 << " from 0,0 to " << num(1.2 * w[2 * c] / r) << ","
         << num(1.2 * w[2 * c + 1] / r) << " lw 3 lc rgb '" << color(c) << "' front\n";
  }
  body << "plot " << quote(tmp.file("circle.dat")) << " with lines lc rgb '#999999' notitle";
  for (int64_t c = 0; c < classes; ++c) {
    const std::string text = per_class[c].str();
    if (text.empty()) continue;
    const std::string file = tmp.file("emb" + std::to_string(index) + "_" + std::to_string(c) + ".dat");
    write_text(file, text);
    body << ", " << quote(file) << " with points pt 7 ps 0.5 lc rgb '" << color(c) << "' title "
         << quote(p.class_names[c]);
  }
  return body.str() + "\n";
}
}  // namespace

void plot_embeddings(const std::string& png, const std::vector<EmbeddingPanel>& panels) {
  AG_CHECK(!panels.empty(), "plot_embeddings '" << png << "': no panels");
  TempFolder tmp;
  std::ostringstream circle;
  for (int i = 0; i <= 360; ++i)
    circle << num(std::cos(i * std::numbers::pi / 180)) << " " << num(std::sin(i * std::numbers::pi / 180))
           << "\n";
  write_text(tmp.file("circle.dat"), circle.str());
  std::ostringstream body;
  body << "set multiplot layout 1," << panels.size() << "\nset size ratio -1\n"
       << "set xrange [-1.35:1.35]\nset yrange [-1.35:1.35]\nset grid\nset key outside bottom center "
          "horizontal\n";
  for (size_t i = 0; i < panels.size(); ++i) body << embedding_panel(panels[i], i, tmp, png);
  body << "unset multiplot";
  render(png, tmp, body.str(), 520 * static_cast<int>(panels.size()), 580);
}

}  // namespace ag::train
