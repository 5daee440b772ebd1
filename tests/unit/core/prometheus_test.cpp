// core::Exposition: the Prometheus text format 0.0.4, byte for byte.
#include <doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "core/prometheus.hpp"

using sniroute::core::Exposition;

TEST_SUITE("core.prometheus") {

TEST_CASE("a family: HELP, TYPE, then samples with and without labels") {
    Exposition e;
    e.family("sniroute_connections_total", "counter", "Connections that ended.");
    e.sample("sniroute_connections_total", {{"listener", "https"}, {"outcome", "ok"}}, uint64_t{3});
    e.sample("sniroute_connections_total", {}, uint64_t{0});
    CHECK(e.text() ==
          "# HELP sniroute_connections_total Connections that ended.\n"
          "# TYPE sniroute_connections_total counter\n"
          "sniroute_connections_total{listener=\"https\",outcome=\"ok\"} 3\n"
          "sniroute_connections_total 0\n");
}

TEST_CASE("label values escape backslash, quote and newline; HELP escapes backslash and newline") {
    Exposition e;
    e.family("x", "gauge", "a \\ b\nc \"d\"");
    e.sample("x", {{"name", "q\"\\\n"}}, uint64_t{1});
    CHECK(e.text() ==
          "# HELP x a \\\\ b\\nc \"d\"\n"
          "# TYPE x gauge\n"
          "x{name=\"q\\\"\\\\\\n\"} 1\n");
}

TEST_CASE("numbers: integers as they are, doubles round-trip, infinities and NaN by name") {
    Exposition e;
    e.sample("a", {}, std::numeric_limits<uint64_t>::max());
    e.sample("b", {}, 0.25);
    e.sample("c", {{"le", "+Inf"}}, std::numeric_limits<double>::infinity());
    e.sample("d", {}, -std::numeric_limits<double>::infinity());
    e.sample("e", {}, std::nan(""));
    e.sample("f", {}, 1733356800.0);
    CHECK(e.text() ==
          "a 18446744073709551615\n"
          "b 0.25\n"
          "c{le=\"+Inf\"} +Inf\n"
          "d -Inf\n"
          "e NaN\n"
          "f 1733356800\n");
}

}  // TEST_SUITE("core.prometheus")
