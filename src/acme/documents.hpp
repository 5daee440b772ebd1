// Typed readers of the JSON documents an ACME CA sends (RFC 8555 7.1, RFC 9773 4.2): the
// client works with these structs, never with a CA's JSON directly. Pure: nlohmann-json only,
// no libuv, no OpenSSL, so tests/fuzz/acme_json_fuzz.cpp builds them alone.
//
// Each parse_* function either returns a document that obeys the rules written on its struct,
// or throws DocumentError naming the document and the field ("order: authorizations[1] is not
// a string"). Nothing else escapes them but std::bad_alloc: every type is checked before it is
// read, so a number where a string belongs, an array of the wrong things, a huge array or deep
// nesting is an error, not an exception from nlohmann-json or a crash.
//
// Fields the client needs are checked strictly; fields it does not read are ignored, and an
// absent optional field takes its default, as RFC 8555 7.1 lets a CA add fields freely.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sniroute::acme {

struct DocumentError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Deeper nesting than this is refused: no ACME document nests more than four levels, and
// nlohmann-json's dump() recurses, so a CA's [[[[...]]]] must not reach it.
constexpr int kMaxJsonDepth = 32;
// Longest array read (identifiers, authorizations, challenges, contacts): Let's Encrypt allows
// 100 names per certificate; more is a broken CA, and the client would POST to each.
constexpr size_t kMaxJsonArray = 100;

// The body as a JSON object. DocumentError "<what>: CA answered with invalid JSON" for text
// that is not JSON or not an object, "<what>: JSON nested deeper than 32 levels" for nesting.
nlohmann::json parse_document(std::string_view body, std::string_view what);

// A URL the client may send a request to: https (RFC 8555 6.1), a non-empty authority, and only
// printable ASCII, so that it cannot break the request line it is written into.
bool is_acme_url(std::string_view url);

// RFC 8555 7.1.1. Every URL is_acme_url.
struct Directory {
    std::string new_nonce, new_account, new_order;
    std::string renewal_info;  // RFC 9773 4.1; "" when the CA does not offer ARI
    bool operator==(const Directory&) const = default;
};
Directory parse_directory(const nlohmann::json& doc);

// RFC 8555 7.1.2. status is "valid", "deactivated" or "revoked"; orders is "" or a URL.
struct Account {
    std::string status;
    std::vector<std::string> contact;
    std::string orders;
    bool operator==(const Account&) const = default;
};
Account parse_account(const nlohmann::json& doc);

// RFC 8555 7.1.3. status is "pending", "ready", "processing", "valid" or "invalid"; every URL
// is_acme_url; a "ready" order has a finalize URL and a "valid" one a certificate URL.
struct Order {
    std::string status;
    std::vector<std::string> authorizations;
    std::string finalize;     // "" when absent
    std::string certificate;  // "" until valid
    std::string error;        // the "error" member as JSON text, "" when absent
    bool operator==(const Order&) const = default;
};
Order parse_order(const nlohmann::json& doc);

// RFC 8555 7.1.4 and 8. Authorization status is "pending", "valid", "invalid", "deactivated",
// "expired" or "revoked"; a challenge's is "pending", "processing", "valid" or "invalid" (or ""
// when absent); each challenge has a type and a URL.
struct Challenge {
    std::string type, url, status, token;
    std::string error;  // its problem's detail, or the "error" member as JSON text; "" if none
    bool operator==(const Challenge&) const = default;
};
struct Authorization {
    std::string status;
    std::string identifier_type, identifier_value;  // "" when absent
    std::vector<Challenge> challenges;
    // Why the authorization failed: the error of the last challenge that has one, "" if none.
    std::string failure() const;
    bool operator==(const Authorization&) const = default;
};
Authorization parse_authorization(const nlohmann::json& doc);

// RFC 9773 4.2. start <= end, both RFC 3339 date-times, as unix seconds.
struct RenewalInfo {
    int64_t start = 0, end = 0;
    std::string explanation_url;  // "" when absent
    bool operator==(const RenewalInfo&) const = default;
};
RenewalInfo parse_renewal_info(const nlohmann::json& doc);

// RFC 8555 6.7 / RFC 7807: read only to report an error, so it never throws (but bad_alloc): a member of the
// wrong type is as good as absent, and a body that is not a JSON object gives an empty Problem.
struct Problem {
    std::string type;
    std::string detail;
    int status = 0;
    bool operator==(const Problem&) const = default;
};
Problem read_problem_body(std::string_view body);
Problem read_problem(const nlohmann::json& doc);

}  // namespace sniroute::acme
