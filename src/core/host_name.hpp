// Host names as sniroute compares them: from an SNI, a Host header, a route pattern or a
// certificate's domain list. One definition, so that a name the config accepts is spelt the
// same way as the name a client sends.
#pragma once

#include <string>
#include <string_view>

namespace sniroute::core {

// Validates a DNS host name (LDH labels of 1..63 characters, 253 in all, one trailing dot
// allowed) and lower-cases it into `out`. Rejects IP literals in brackets, '_', '%', NUL and
// every non-ASCII byte: nothing that a route could be made to mismatch.
bool normalize_host_name(std::string_view in, std::string& out);

// A route pattern: a host name, or "*." followed by one. Normalised as above ("*." kept).
bool normalize_pattern(std::string_view pattern, std::string& out);

// ASCII lower-case copy; other bytes unchanged.
std::string ascii_lower(std::string_view s);

// The base64url alphabet of RFC 4648 section 5, without padding: ACME tokens and JWK
// thumbprints. An empty string is not base64url here.
bool is_base64url_char(char c);
bool is_base64url(std::string_view s);

}  // namespace sniroute::core
