// The typed readers of the CA's JSON documents: real documents of Let's Encrypt and Pebble,
// then each way a document can be wrong, with the message that names the field. The flows that
// use them (client_flow_test.cpp) keep their own fake CA.
#include <doctest.h>

#include <exception>
#include <string>

#include "acme/documents.hpp"

using namespace sniroute::acme;
using nlohmann::json;

namespace {

const char* parse_name(Directory (*)(const json&)) { return "directory"; }
const char* parse_name(Order (*)(const json&)) { return "order"; }
const char* parse_name(Authorization (*)(const json&)) { return "authorization"; }
const char* parse_name(Account (*)(const json&)) { return "account"; }
const char* parse_name(RenewalInfo (*)(const json&)) { return "renewalInfo"; }

// The message a reader fails with, or "" when it reads the document.
template <class Parse>
std::string error_of(Parse parse, const std::string& text) {
    try {
        parse(parse_document(text, parse_name(parse)));
    } catch (const DocumentError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_SUITE("acme.documents") {

TEST_CASE("directory: Let's Encrypt's, with renewalInfo; Pebble's without") {
    Directory d = parse_directory(parse_document(R"({
        "keyChange": "https://acme-v02.api.letsencrypt.org/acme/key-change",
        "meta": {"caaIdentities": ["letsencrypt.org"], "website": "https://letsencrypt.org"},
        "newAccount": "https://acme-v02.api.letsencrypt.org/acme/new-acct",
        "newNonce": "https://acme-v02.api.letsencrypt.org/acme/new-nonce",
        "newOrder": "https://acme-v02.api.letsencrypt.org/acme/new-order",
        "renewalInfo": "https://acme-v02.api.letsencrypt.org/draft-ietf-acme-ari-03/renewalInfo",
        "revokeCert": "https://acme-v02.api.letsencrypt.org/acme/revoke-cert"})",
                                                 "directory"));
    CHECK(d.new_nonce == "https://acme-v02.api.letsencrypt.org/acme/new-nonce");
    CHECK(d.new_account == "https://acme-v02.api.letsencrypt.org/acme/new-acct");
    CHECK(d.new_order == "https://acme-v02.api.letsencrypt.org/acme/new-order");
    CHECK(d.renewal_info == "https://acme-v02.api.letsencrypt.org/draft-ietf-acme-ari-03/renewalInfo");
    Directory p = parse_directory(json{{"newAccount", "https://localhost:14000/sign-me-up"},
                                       {"newNonce", "https://localhost:14000/nonce-plz"},
                                       {"newOrder", "https://localhost:14000/order-plz"},
                                       {"meta", {{"externalAccountRequired", false}}}});
    CHECK(p.renewal_info.empty());
}

TEST_CASE("order, authorization, account and renewalInfo as the CA writes them") {
    Order o = parse_order(json::parse(R"({"status": "pending", "expires": "2026-12-11T20:00:00Z",
        "identifiers": [{"type": "dns", "value": "a.example"}],
        "authorizations": ["https://ca.test/authz/1", "https://ca.test/authz/2"],
        "finalize": "https://ca.test/finalize/1"})"));
    CHECK(o.status == "pending");
    CHECK(o.authorizations == std::vector<std::string>{"https://ca.test/authz/1", "https://ca.test/authz/2"});
    CHECK(o.finalize == "https://ca.test/finalize/1");
    CHECK(o.certificate.empty());
    CHECK(o.error.empty());
    Order bad = parse_order(json::parse(R"({"status": "invalid", "error": {"type": "x", "detail": "y"}})"));
    CHECK(bad.error == R"({"detail":"y","type":"x"})");

    Authorization a = parse_authorization(json::parse(R"({"status": "invalid",
        "identifier": {"type": "dns", "value": "a.example"},
        "challenges": [
          {"type": "dns-01", "url": "https://ca.test/chall/0", "status": "invalid", "token": "d", "error": "plain"},
          {"type": "http-01", "url": "https://ca.test/chall/1", "status": "invalid", "token": "tok",
           "error": {"type": "urn:ietf:params:acme:error:connection", "detail": "Connection refused"}},
          {"type": "tls-alpn-01", "url": "https://ca.test/chall/2", "status": "pending"}]})"));
    CHECK(a.identifier_type == "dns");
    CHECK(a.identifier_value == "a.example");
    REQUIRE(a.challenges.size() == 3);
    CHECK(a.challenges[0].error == "\"plain\"");  // not a problem document: its JSON text
    CHECK(a.challenges[1].token == "tok");
    CHECK(a.challenges[2].token.empty());
    CHECK(a.failure() == "Connection refused");  // the last challenge with an error

    Account acct = parse_account(json::parse(
        R"({"status": "valid", "contact": ["mailto:ops@example.com"], "orders": "https://ca.test/orders/1"})"));
    CHECK(acct.contact == std::vector<std::string>{"mailto:ops@example.com"});

    RenewalInfo r = parse_renewal_info(json::parse(
        R"({"suggestedWindow": {"start": "2026-02-01T00:00:00Z", "end": "2026-02-02T12:00:00.5+12:00"},
            "explanationURL": "https://ca.test/why"})"));
    CHECK(r.start == 1769904000);
    CHECK(r.end == 1769990400);
    CHECK(r.explanation_url == "https://ca.test/why");
}

TEST_CASE("each wrong field is named, with its document") {
    const struct {
        std::string (*read)(const std::string&);
        const char* text;
        const char* error;
    } cases[] = {
        {[](const std::string& t) { return error_of(parse_directory, t); }, R"({"newNonce": "https://a/n"})",
         "directory: newAccount is missing"},
        {[](const std::string& t) { return error_of(parse_directory, t); },
         R"({"newNonce": 5, "newAccount": "https://a/", "newOrder": "https://a/"})",
         "directory: newNonce is not a string"},
        {[](const std::string& t) { return error_of(parse_directory, t); },
         R"({"newNonce": "http://a/n", "newAccount": "https://a/", "newOrder": "https://a/"})",
         "directory: newNonce is not an https URL: \"http://a/n\""},
        {[](const std::string& t) { return error_of(parse_directory, t); },
         R"({"newNonce": "https://a/", "newAccount": "https://a/", "newOrder": "https://a/", "renewalInfo": []})",
         "directory: renewalInfo is not a string"},
        {[](const std::string& t) { return error_of(parse_order, t); }, R"({"status": "done"})",
         "order: status is not a known status: \"done\""},
        {[](const std::string& t) { return error_of(parse_order, t); }, R"({"authorizations": []})",
         "order: status is missing"},
        {[](const std::string& t) { return error_of(parse_order, t); },
         R"({"status": "pending", "authorizations": ["https://a/1", 2]})", "order: authorizations[1] is not a string"},
        {[](const std::string& t) { return error_of(parse_order, t); },
         R"({"status": "pending", "authorizations": "https://a/1"})", "order: authorizations is not an array"},
        {[](const std::string& t) { return error_of(parse_order, t); }, R"({"status": "ready"})",
         "order: finalize is missing"},
        {[](const std::string& t) { return error_of(parse_order, t); },
         R"({"status": "valid", "finalize": "https://a/f"})", "order: certificate is missing"},
        {[](const std::string& t) { return error_of(parse_order, t); },
         R"({"status": "valid", "certificate": "https://a/c\r\nX: y"})",
         "order: certificate is not an https URL: \"https://a/c\r\nX: y\""},
        {[](const std::string& t) { return error_of(parse_authorization, t); },
         R"({"status": "pending", "challenges": [{"type": "http-01", "url": "https://a/"}, 7]})",
         "authorization: challenges[1] is not an object"},
        {[](const std::string& t) { return error_of(parse_authorization, t); },
         R"({"status": "pending", "challenges": [{"type": "http-01"}]})",
         "authorization: challenges[0].url is missing"},
        {[](const std::string& t) { return error_of(parse_authorization, t); },
         R"({"status": "pending", "challenges": [{"type": "", "url": "https://a/"}]})",
         "authorization: challenges[0].type is empty"},
        {[](const std::string& t) { return error_of(parse_authorization, t); },
         R"({"status": "pending", "challenges": [{"type": "x", "url": "https://a/", "status": "done"}]})",
         "authorization: challenges[0].status is not a known status: \"done\""},
        {[](const std::string& t) { return error_of(parse_authorization, t); },
         R"({"status": "pending", "identifier": {"type": "dns", "value": ["a"]}})",
         "authorization: identifier.value is not a string"},
        {[](const std::string& t) { return error_of(parse_authorization, t); },
         R"({"status": "pending", "identifier": "a.example"})", "authorization: identifier is not an object"},
        {[](const std::string& t) { return error_of(parse_account, t); }, R"({"status": "gone"})",
         "account: status is not a known status: \"gone\""},
        {[](const std::string& t) { return error_of(parse_renewal_info, t); }, R"({})",
         "renewalInfo: suggestedWindow is missing"},
        {[](const std::string& t) { return error_of(parse_renewal_info, t); },
         R"({"suggestedWindow": {"start": "2026-02-01", "end": "2026-02-02T00:00:00Z"}})",
         "renewalInfo: suggestedWindow.start is not an RFC 3339 date-time: \"2026-02-01\""},
        {[](const std::string& t) { return error_of(parse_renewal_info, t); },
         R"({"suggestedWindow": {"start": "2026-02-02T00:00:00Z", "end": "2026-02-01T00:00:00Z"}})",
         "renewalInfo: suggestedWindow ends before it starts"},
        {[](const std::string& t) { return error_of(parse_renewal_info, t); }, R"({"suggestedWindow": 1})",
         "renewalInfo: suggestedWindow is not an object"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.text);
        CHECK(c.read(c.text) == c.error);
    }
}

TEST_CASE("parse_document: not an object, not JSON, too deep") {
    for (const char* bad : {"", "[]", "\"x\"", "5", "null", "{", "{\"a\":1} x", "{'a': 1}"}) {
        CAPTURE(bad);
        CHECK(error_of(parse_order, bad) == "order: CA answered with invalid JSON");
    }
    auto nested = [](int levels) {
        return "{\"a\":" + std::string(static_cast<size_t>(levels), '[') +
               std::string(static_cast<size_t>(levels), ']') + "}";
    };
    CHECK_NOTHROW(parse_document(nested(kMaxJsonDepth - 1), "order"));
    CHECK(error_of(parse_order, nested(kMaxJsonDepth + 1)) == "order: JSON nested deeper than 32 levels");
    // A megabyte of brackets, as a hostile CA could send within the body limit.
    CHECK(error_of(parse_order, nested(500'000)) == "order: JSON nested deeper than 32 levels");
}

TEST_CASE("wrong types anywhere give DocumentError and nothing else") {
    const json values[] = {
        nullptr, true, 0, -1, 1.5, "", "x", json::array(), json::array({1, "a"}), json::object(), json{{"type", 1}}};
    const char* keys[] = {"status",   "authorizations", "finalize", "certificate", "challenges",      "identifier",
                          "newNonce", "newAccount",     "newOrder", "renewalInfo", "suggestedWindow", "contact",
                          "orders",   "error",          "type",     "detail"};
    for (const char* key : keys) {
        for (const json& v : values) {
            json doc = {{"status", "valid"}, {"certificate", "https://a/c"}, {key, v}};
            CAPTURE(doc.dump());
            auto only_document_errors = [&](auto parse) {
                try {
                    parse(doc);
                } catch (const DocumentError&) {
                } catch (const std::exception& e) {
                    FAIL("not a DocumentError: " << e.what());
                }
            };
            only_document_errors(parse_directory);
            only_document_errors(parse_account);
            only_document_errors(parse_order);
            only_document_errors(parse_authorization);
            only_document_errors(parse_renewal_info);
            CHECK_NOTHROW(read_problem(doc));
        }
    }
}

TEST_CASE("arrays are bounded") {
    json order = {{"status", "pending"}, {"authorizations", json::array()}};
    for (size_t i = 0; i < kMaxJsonArray; ++i) order["authorizations"].push_back("https://a/" + std::to_string(i));
    CHECK(parse_order(order).authorizations.size() == kMaxJsonArray);
    order["authorizations"].push_back("https://a/last");
    CHECK(error_of(parse_order, order.dump()) == "order: authorizations has more than 100 entries");
}

TEST_CASE("read_problem: lenient, never throws") {
    Problem p = read_problem_body(R"({"type": "urn:ietf:params:acme:error:badNonce", "detail": "stale",
                                      "status": 400, "subproblems": []})");
    CHECK(p.type == "urn:ietf:params:acme:error:badNonce");
    CHECK(p.detail == "stale");
    CHECK(p.status == 400);
    CHECK(read_problem_body(R"({"type": 5, "detail": ["x"], "status": "400"})") == Problem{});
    CHECK(read_problem_body(R"({"status": 99999999999999999999})") == Problem{});
    CHECK(read_problem_body("<html>Bad Gateway</html>") == Problem{});
    CHECK(read_problem_body("") == Problem{});
    CHECK(read_problem_body(std::string(100'000, '[')) == Problem{});
}

TEST_CASE("is_acme_url: https, an authority, printable ASCII") {
    for (const char* good : {"https://a", "https://a/", "https://[::1]:14000/dir", "https://ca.test/x?y=z#f"}) {
        CAPTURE(good);
        CHECK(is_acme_url(good));
    }
    for (const char* bad : {"", "https://", "https:///x", "http://a/", "HTTPS://a/", "https://a/ b", "https://a/\r\n",
                            "https://a/\x7f", "https://a/\xc3\xa9", "//a/", "https://?x", "https://#x"}) {
        CAPTURE(bad);
        CHECK_FALSE(is_acme_url(bad));
    }
}

}  // TEST_SUITE("acme.documents")
