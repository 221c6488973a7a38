// Metrics files of a run folder: metrics.jsonl (one JSON object per line, any fields,
// e.g. per-class lists) and metrics.csv (one row of numbers per epoch, for spreadsheets
// and the curve plots). Both are appended to, so a resumed run continues the same files.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ag::train {

// Appends record (a JSON object) as one line.
void append_jsonl(const std::string& path, const nlohmann::json& record);

// Appends one row. A new or empty file gets the header line first; an existing file's
// header must list exactly these columns (else an error naming both). Numbers are written
// with 10 significant digits; NaN as "nan".
void append_csv_row(const std::string& path, const std::vector<std::string>& columns,
                    const std::vector<double>& values);

// A numeric table read back from such a CSV file.
struct MetricsTable {
  std::vector<std::string> columns;
  std::vector<std::vector<double>> rows;
  bool has(const std::string& column) const;
  std::vector<double> column(const std::string& name) const;  // error naming it if absent
};
MetricsTable read_metrics_csv(const std::string& path);

}  // namespace ag::train
