// NameTable: exact names and "*.suffix" wildcards, and the pattern validation in front of it.
#include <doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "core/host_name.hpp"
#include "route/name_table.hpp"

using sniroute::core::normalize_pattern;
using sniroute::route::NameTable;

namespace {

constexpr int kNoMatch = -1;

// find() as a plain int, so a failed CHECK prints the index it got.
int lookup(const NameTable& t, std::string_view name) {
    std::optional<size_t> i = t.find(name);
    return i ? static_cast<int>(*i) : kNoMatch;
}

struct Lookup {
    std::string name;
    int want;
};

void check_lookups(const NameTable& t, const std::vector<Lookup>& lookups) {
    for (const auto& l : lookups) {
        CAPTURE(l.name);
        CHECK(lookup(t, l.name) == l.want);
    }
}

}  // namespace

TEST_SUITE("route.name_table") {

TEST_CASE("an empty table matches nothing") {
    NameTable t;
    check_lookups(t, {{"example.org", kNoMatch}, {"a.example.org", kNoMatch}, {"", kNoMatch}, {".", kNoMatch}});
}

TEST_CASE("exact names") {
    NameTable t;
    REQUIRE(t.add("mail.example.com", 0));
    REQUIRE(t.add("autoconfig.example.com", 1));
    check_lookups(t, {
                         {"mail.example.com", 0},
                         {"autoconfig.example.com", 1},
                         {"example.com", kNoMatch},
                         {"x.mail.example.com", kNoMatch},  // an exact name covers no subdomain
                         {"mail.example.co", kNoMatch},
                         {"mail.example.com.evil", kNoMatch},
                         {"ail.example.com", kNoMatch},
                         {"", kNoMatch},
                     });
}

TEST_CASE("wildcards cover one or more labels, never the suffix itself") {
    NameTable t;
    REQUIRE(t.add("*.example.org", 7));
    check_lookups(t, {
                         {"a.example.org", 7},
                         {"www.example.org", 7},
                         {"a.b.example.org", 7},
                         {"a.b.c.d.example.org", 7},
                         {"example.org", kNoMatch},
                         {".example.org", kNoMatch},
                         {"example.org.", kNoMatch},
                         {"aexample.org", kNoMatch},  // the suffix starts at a dot
                         {"a.example.org.uk", kNoMatch},
                         {"org", kNoMatch},
                         {"a.example.com", kNoMatch},
                     });
}

TEST_CASE("an exact name beats a wildcard, whichever was added first") {
    for (bool exact_first : {true, false}) {
        CAPTURE(exact_first);
        NameTable t;
        if (exact_first) REQUIRE(t.add("mail.example.com", 1));
        REQUIRE(t.add("*.example.com", 2));
        if (!exact_first) REQUIRE(t.add("mail.example.com", 1));
        check_lookups(t, {{"mail.example.com", 1}, {"smtp.example.com", 2}, {"x.mail.example.com", 2}});
    }
}

TEST_CASE("the longer wildcard suffix beats the shorter, whichever was added first") {
    for (bool short_first : {true, false}) {
        CAPTURE(short_first);
        NameTable t;
        if (short_first) REQUIRE(t.add("*.example.com", 1));
        REQUIRE(t.add("*.apps.example.com", 2));
        REQUIRE(t.add("*.x.apps.example.com", 3));
        if (!short_first) REQUIRE(t.add("*.example.com", 1));
        check_lookups(t, {
                             {"www.example.com", 1},
                             {"apps.example.com", 1},  // not covered by *.apps.example.com
                             {"a.apps.example.com", 2},
                             {"a.b.apps.example.com", 2},
                             {"x.apps.example.com", 2},
                             {"a.x.apps.example.com", 3},
                             {"a.b.x.apps.example.com", 3},
                             {"a.xapps.example.com", 1},
                         });
    }
}

TEST_CASE("exact and wildcard for the same suffix live side by side") {
    NameTable t;
    REQUIRE(t.add("example.org", 1));
    REQUIRE(t.add("*.example.org", 2));
    check_lookups(t, {{"example.org", 1}, {"a.example.org", 2}, {".example.org", kNoMatch}});
}

TEST_CASE("matching ignores case and one trailing dot") {
    NameTable t;
    REQUIRE(t.add("Mail.Example.COM", 1));
    REQUIRE(t.add("*.APPS.example.com", 2));
    check_lookups(t, {
                         {"mail.example.com", 1},
                         {"MAIL.EXAMPLE.COM", 1},
                         {"mAiL.eXaMpLe.CoM", 1},
                         {"mail.example.com.", 1},
                         {"MAIL.EXAMPLE.COM.", 1},
                         {"a.apps.example.com", 2},
                         {"A.Apps.Example.Com.", 2},
                         {"mail.example.com..", kNoMatch},
                     });
}

TEST_CASE("adding a pattern twice fails and keeps the first index") {
    NameTable t;
    CHECK(t.add("mail.example.com", 1));
    CHECK_FALSE(t.add("mail.example.com", 2));
    CHECK_FALSE(t.add("MAIL.example.com", 3));  // the same name in another case
    CHECK(t.add("*.example.com", 4));
    CHECK_FALSE(t.add("*.example.com", 5));
    CHECK_FALSE(t.add("*.EXAMPLE.com", 6));
    check_lookups(t, {{"mail.example.com", 1}, {"www.example.com", 4}});
}

TEST_CASE("names at the length limits") {
    const std::string label63(63, 'a');
    const std::string name253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
    std::string out;
    CHECK(normalize_pattern(name253, out));
    CHECK_FALSE(normalize_pattern(name253 + "b", out));
    CHECK(normalize_pattern("*." + label63 + ".example", out));
    CHECK_FALSE(normalize_pattern("*." + label63 + "a.example", out));
    NameTable t;
    REQUIRE(t.add(name253, 3));
    CHECK(lookup(t, name253) == 3);
    CHECK(lookup(t, name253 + ".") == 3);
}

}  // TEST_SUITE("route.name_table")
