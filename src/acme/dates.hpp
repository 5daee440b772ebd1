// The two date forms an ACME CA sends: RFC 3339 date-times in JSON documents (renewalInfo's
// suggestedWindow, an order's expires) and the Retry-After header (RFC 9110 10.2.3). Pure: no
// libuv, no OpenSSL, no clock (the caller passes "now"), so the fuzz target builds them alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sniroute::acme {

// Parses an RFC 3339 date-time ("2026-01-01T00:00:00Z"; fractional seconds are truncated, and
// numeric offsets are applied) to unix seconds. A leap second (:60) counts as the next second.
// nullopt for anything else, including out-of-range fields such as February 30.
std::optional<int64_t> parse_rfc3339(std::string_view s);

// The wait a Retry-After value asks for (RFC 9110 10.2.3), in seconds from `now`: either
// delta-seconds or an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"; a past date means 0).
// A delta too large for 64 bits is UINT64_MAX ("a very long time"; callers clamp it).
// nullopt when the value is empty or neither form (the obsolete date forms included).
std::optional<uint64_t> parse_retry_after(std::string_view value, int64_t now);

// The first and last second parse_rfc3339 and parse_retry_after can express (years 0000-9999
// in UTC; an offset can move a date-time up to a day beyond them).
constexpr int64_t kFirstDateS = -62167219200;  // 0000-01-01T00:00:00Z
constexpr int64_t kLastDateS = 253402300799;   // 9999-12-31T23:59:59Z

// Canonical forms of a unix time within [kFirstDateS, kLastDateS]: "YYYY-MM-DDTHH:MM:SSZ" and
// the IMF-fixdate "Www, DD Mmm YYYY HH:MM:SS GMT". "" outside that range. Used for logs and by
// the tests and the fuzz target, which check that parsing a formatted time gives it back.
std::string format_rfc3339(int64_t unix_s);
std::string format_imf_fixdate(int64_t unix_s);

}  // namespace sniroute::acme
