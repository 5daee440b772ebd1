#include "core/prometheus.hpp"

#include <cmath>
#include <cstdio>

namespace sniroute::core {

namespace {

// HELP text escapes '\' and newline; label values also '"'.
void escape(std::string& out, std::string_view s, bool quote) {
    for (char c : s) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else if (quote && c == '"')
            out += "\\\"";
        else
            out += c;
    }
}

}  // namespace

void Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    escape(out_, help, false);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
}

void Exposition::head(std::string_view name, std::initializer_list<Label> labels) {
    out_ += name;
    if (labels.size() > 0) {
        char sep = '{';
        for (const auto& [k, v] : labels) {
            out_ += sep;
            out_ += k;
            out_ += "=\"";
            escape(out_, v, true);
            out_ += '"';
            sep = ',';
        }
        out_ += '}';
    }
    out_ += ' ';
}

void Exposition::sample(std::string_view name, std::initializer_list<Label> labels, uint64_t value) {
    head(name, labels);
    out_ += std::to_string(value);
    out_ += '\n';
}

void Exposition::sample(std::string_view name, std::initializer_list<Label> labels, double value) {
    head(name, labels);
    if (std::isinf(value)) {
        out_ += value > 0 ? "+Inf" : "-Inf";
    } else if (std::isnan(value)) {
        out_ += "NaN";
    } else {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", value);
        out_ += buf;
    }
    out_ += '\n';
}

}  // namespace sniroute::core
