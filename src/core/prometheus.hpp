// The Prometheus text exposition format, version 0.0.4: what /metrics answers.
//
//   # HELP NAME TEXT        TEXT with '\' and newline escaped
//   # TYPE NAME TYPE        counter, gauge, histogram, ...
//   NAME{LABEL="VALUE",...} NUMBER
//
// Label values are escaped ('\', '"', newline), since they carry names from the config. Every
// family is written whole (HELP, TYPE, then its samples) before the next one begins: the format
// wants one family's samples together, and promtool rejects a family named twice.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace sniroute::core {

using Label = std::pair<std::string_view, std::string_view>;

class Exposition {
public:
    // Starts a family. `type` is "counter", "gauge", "histogram", "summary" or "untyped".
    void family(std::string_view name, std::string_view type, std::string_view help);
    // One sample of the current family (or, for a histogram, one of its _bucket/_sum/_count
    // series, given by `name`).
    void sample(std::string_view name, std::initializer_list<Label> labels, uint64_t value);
    void sample(std::string_view name, std::initializer_list<Label> labels, double value);
    const std::string& text() const { return out_; }

private:
    void head(std::string_view name, std::initializer_list<Label> labels);
    std::string out_;
};

}  // namespace sniroute::core
