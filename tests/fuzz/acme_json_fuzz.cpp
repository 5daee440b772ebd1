// libFuzzer target for the typed readers of the ACME CA's JSON documents (acme/documents.hpp).
//
// The input is the body of a CA's answer. It goes through parse_document (the depth-bounded
// parse the client uses) and then through every reader: directory, account, order,
// authorization, renewalInfo, problem. What must hold:
//   - nothing escapes but DocumentError, and its message names the document;
//   - parse_document agrees with nlohmann-json's own parse on what is a JSON object, and
//     refuses exactly the documents nested too deeply (within one level: see check_parse);
//   - every document read obeys the rules written on its struct (statuses from RFC 8555's sets,
//     https URLs of printable ASCII, bounded arrays, start <= end) and says what the JSON says;
//   - dump() of the document, parsed again, reads the same, result for result and error for
//     error.
// A broken invariant aborts, which libFuzzer reports as a crash.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <initializer_list>
#include <string>
#include <string_view>

#include "acme/dates.hpp"
#include "acme/documents.hpp"

using namespace sniroute::acme;
using nlohmann::json;

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail = "") {
    std::fprintf(stderr, "acme_json_fuzz: invariant broken: %s %s\n", what, detail.c_str());
    std::abort();
}

void require(bool ok, const char* what, const std::string& detail = "") {
    if (!ok) fail(what, detail);
}

bool one_of(const std::string& s, std::initializer_list<std::string_view> set) {
    return std::find(set.begin(), set.end(), s) != set.end();
}

// The URL rule, written again from RFC 8555 6.1 rather than by calling is_acme_url.
bool https_url(const std::string& u) {
    if (u.rfind("https://", 0) != 0 || u.size() == 8) return false;
    if (u[8] == '/' || u[8] == '?' || u[8] == '#') return false;
    for (unsigned char c : u)
        if (c <= ' ' || c >= 0x7f) return false;
    return true;
}

// Nesting of a value: 0 for a scalar, 1 + the deepest member for an array or object.
int depth(const json& j) {
    if (!j.is_structured()) return 0;
    int d = 0;
    for (const auto& v : j) d = std::max(d, depth(v));
    return d + 1;
}

// A reader's outcome: the document, or the error's text.
template <class Doc>
struct Read {
    bool ok = false;
    Doc doc{};
    std::string error;
    bool operator==(const Read&) const = default;
};

template <class Doc>
Read<Doc> read(const json& j, Doc (*parse)(const json&), std::string_view name) {
    Read<Doc> r;
    try {
        r.doc = parse(j);
        r.ok = true;
    } catch (const DocumentError& e) {
        r.error = e.what();
        require(r.error.rfind(std::string(name) + ": ", 0) == 0 && r.error.size() > name.size() + 2,
                "an error that does not name its document", r.error);
    } catch (const std::exception& e) {
        fail("a reader threw something else than DocumentError", e.what());
    }
    return r;
}

void check_directory(const json& j, const Directory& d) {
    for (const auto* u : {&d.new_nonce, &d.new_account, &d.new_order}) require(https_url(*u), "directory URL", *u);
    require(d.renewal_info.empty() || https_url(d.renewal_info), "directory renewalInfo", d.renewal_info);
    require(j["newNonce"] == d.new_nonce && j["newOrder"] == d.new_order, "directory says something else");
}

void check_account(const Account& a) {
    require(one_of(a.status, {"valid", "deactivated", "revoked"}), "account status", a.status);
    require(a.contact.size() <= kMaxJsonArray, "account contacts unbounded");
    require(a.orders.empty() || https_url(a.orders), "account orders URL", a.orders);
}

void check_order(const json& j, const Order& o) {
    require(one_of(o.status, {"pending", "ready", "processing", "valid", "invalid"}), "order status", o.status);
    require(j["status"] == o.status, "order status is not the document's");
    require(o.authorizations.size() <= kMaxJsonArray, "order authorizations unbounded");
    for (const auto& a : o.authorizations) require(https_url(a), "order authorization URL", a);
    require(o.finalize.empty() || https_url(o.finalize), "order finalize URL", o.finalize);
    require(o.certificate.empty() || https_url(o.certificate), "order certificate URL", o.certificate);
    if (o.status == "ready") require(!o.finalize.empty(), "a ready order without finalize");
    if (o.status == "valid") require(!o.certificate.empty(), "a valid order without certificate");
    require(j.contains("error") == !o.error.empty(), "order error lost or invented");
}

void check_authorization(const Authorization& a) {
    require(one_of(a.status, {"pending", "valid", "invalid", "deactivated", "expired", "revoked"}),
            "authorization status", a.status);
    require(a.challenges.size() <= kMaxJsonArray, "challenges unbounded");
    std::string last_error;
    for (const auto& c : a.challenges) {
        require(!c.type.empty(), "a challenge without a type");
        require(https_url(c.url), "challenge URL", c.url);
        require(one_of(c.status, {"", "pending", "processing", "valid", "invalid"}), "challenge status", c.status);
        if (!c.error.empty()) last_error = c.error;
    }
    require(a.failure() == last_error, "failure() is not the last challenge error");
}

void check_renewal_info(const RenewalInfo& r) {
    require(r.start <= r.end, "a renewal window that ends before it starts");
    require(r.start >= kFirstDateS - 86400 && r.end <= kLastDateS + 86400, "a renewal window out of range");
}

// Every reader over one parsed document; returns their outcomes for the re-parse comparison.
struct All {
    Read<Directory> directory;
    Read<Account> account;
    Read<Order> order;
    Read<Authorization> authorization;
    Read<RenewalInfo> renewal_info;
    Problem problem;
    bool operator==(const All&) const = default;
};

All read_all(const json& j) {
    All all;
    all.directory = read(j, parse_directory, "directory");
    if (all.directory.ok) check_directory(j, all.directory.doc);
    all.account = read(j, parse_account, "account");
    if (all.account.ok) check_account(all.account.doc);
    all.order = read(j, parse_order, "order");
    if (all.order.ok) check_order(j, all.order.doc);
    all.authorization = read(j, parse_authorization, "authorization");
    if (all.authorization.ok) check_authorization(all.authorization.doc);
    all.renewal_info = read(j, parse_renewal_info, "renewalInfo");
    if (all.renewal_info.ok) check_renewal_info(all.renewal_info.doc);
    try {
        all.problem = read_problem(j);
    } catch (const std::exception& e) {
        fail("read_problem threw", e.what());
    }
    require(all.problem.status == 0 || (all.problem.status >= 100 && all.problem.status <= 599), "problem status");
    return all;
}

// parse_document against nlohmann-json's plain parse. The parse callback counts depth from the
// top value's members, so a document of depth(j) == kMaxJsonDepth + 1 may go either way.
bool check_parse(std::string_view body, json& out) {
    json plain = json::parse(body.begin(), body.end(), nullptr, false);
    std::string error;
    try {
        out = parse_document(body, "doc");
    } catch (const DocumentError& e) {
        error = e.what();
    } catch (const std::exception& e) {
        fail("parse_document threw something else than DocumentError", e.what());
    }
    bool object = !plain.is_discarded() && plain.is_object();
    if (!object) {
        require(!error.empty(), "parse_document took what is not a JSON object");
        return false;
    }
    int d = depth(plain);
    if (d <= kMaxJsonDepth) {
        require(error.empty(), "parse_document refused a shallow object", error);
        require(out == plain, "parse_document and json::parse differ");
    } else if (d > kMaxJsonDepth + 1) {
        require(error == "doc: JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels",
                "parse_document took a deep object", error);
    }
    require(read_problem_body(body) == (d <= kMaxJsonDepth ? read_problem(plain) : read_problem_body(body)),
            "read_problem_body and read_problem differ");
    return error.empty();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view body(reinterpret_cast<const char*>(data), size);
    json j;
    if (!check_parse(body, j)) {
        // Not a document: the problem reader must still answer, emptily.
        require(read_problem_body(body) == Problem{} || json::parse(body, nullptr, false).is_object(),
                "a problem read out of what is not an object");
        return 0;
    }
    All first = read_all(j);
    std::string text = j.dump();
    json again = parse_document(text, "doc");
    require(again == j, "dump() does not parse back to the document");
    require(read_all(again) == first, "the dumped document reads differently");
    return 0;
}
