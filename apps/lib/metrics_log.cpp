// metrics.jsonl / metrics.csv writers and the CSV reader.
#include "apps/lib/metrics_log.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace ag::train {

namespace {
void append_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::app | std::ios::binary);
  AG_CHECK(out.is_open(), "cannot open '" << path << "' for appending: " << std::strerror(errno));
  out << text;
  out.flush();
  AG_CHECK(out.good(), "writing to '" << path << "' failed: " << std::strerror(errno));
}

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string item;
  while (std::getline(ss, item, sep)) out.push_back(item);
  if (!line.empty() && line.back() == sep) out.emplace_back();
  return out;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += items[i];
  }
  return out;
}

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (in.is_open()) std::getline(in, line);
  return line;
}
}  // namespace

void append_jsonl(const std::string& path, const nlohmann::json& record) {
  AG_CHECK(record.is_object(), "append_jsonl '" << path << "': the record must be a JSON object");
  append_text(path, record.dump() + "\n");
}

void append_csv_row(const std::string& path, const std::vector<std::string>& columns,
                    const std::vector<double>& values) {
  AG_CHECK(columns.size() == values.size(), "append_csv_row '" << path << "': " << columns.size()
                                                               << " columns but " << values.size()
                                                               << " values");
  for (const std::string& c : columns)
    AG_CHECK(!c.empty() && c.find_first_of(",\"\n\r") == std::string::npos,
             "append_csv_row '" << path << "': bad column name '" << c << "'");
  const std::string header = join(columns);
  const std::string existing = first_line(path);
  std::string text;
  if (existing.empty()) {
    text = header + "\n";
  } else {
    AG_CHECK(existing == header, "append_csv_row '" << path << "': the file has columns '" << existing
                                                    << "' but this row has '" << header << "'");
  }
  for (size_t i = 0; i < values.size(); ++i) {
    char buf[32];
    if (std::isnan(values[i])) {
      std::snprintf(buf, sizeof buf, "nan");
    } else {
      std::snprintf(buf, sizeof buf, "%.10g", values[i]);
    }
    if (i) text += ',';
    text += buf;
  }
  append_text(path, text + "\n");
}

bool MetricsTable::has(const std::string& column) const {
  for (const std::string& c : columns)
    if (c == column) return true;
  return false;
}

std::vector<double> MetricsTable::column(const std::string& name) const {
  for (size_t j = 0; j < columns.size(); ++j) {
    if (columns[j] != name) continue;
    std::vector<double> out;
    for (const auto& row : rows) out.push_back(row[j]);
    return out;
  }
  AG_FAIL("metrics table: no column '" << name << "' (columns: " << join(columns) << ")");
}

MetricsTable read_metrics_csv(const std::string& path) {
  std::ifstream in(path);
  AG_CHECK(in.is_open(), "cannot open '" << path << "': " << std::strerror(errno));
  MetricsTable table;
  std::string line;
  AG_CHECK(std::getline(in, line) && !line.empty(), "'" << path << "' is empty: expected a header line");
  table.columns = split(line, ',');
  for (int64_t number = 2; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    const auto cells = split(line, ',');
    AG_CHECK(cells.size() == table.columns.size(), "'" << path << "' line " << number << ": " << cells.size()
                                                       << " cells, but the header has "
                                                       << table.columns.size());
    std::vector<double> row;
    for (const std::string& cell : cells) {
      char* end = nullptr;
      const double v = std::strtod(cell.c_str(), &end);
      AG_CHECK(!cell.empty() && *end == '\0',
               "'" << path << "' line " << number << ": '" << cell << "' is not a number");
      row.push_back(v);
    }
    table.rows.push_back(std::move(row));
  }
  return table;
}

}  // namespace ag::train
