// ACME HTTP-01 (RFC 8555 section 8.3): recognising challenge paths and finding the answer.
//
// Sources, tried in order: the in-memory token store (filled by the built-in ACME client), the
// webroot that certbot -w and lego --http.webroot write to, and the stateless answer
// TOKEN.THUMBPRINT for the account whose thumbprint is configured.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace sniroute::http {

// Where answers come from besides files. Thread-safe: workers read it, the ACME client writes.
class TokenStore {
public:
    virtual ~TokenStore() = default;
    virtual std::optional<std::string> key_authorization(std::string_view token) const = 0;
};

class MemoryTokenStore final : public TokenStore {
public:
    void put(std::string token, std::string key_authorization);
    void remove(std::string_view token);
    std::optional<std::string> key_authorization(std::string_view token) const override;

private:
    mutable std::mutex mu_;
    std::map<std::string, std::string, std::less<>> tokens_;
};

constexpr std::string_view kChallengePrefix = "/.well-known/acme-challenge/";
constexpr size_t kMaxToken = 256;

enum class PathKind { Other, Challenge, BadToken };

// What follows "scheme://authority" in an absolute-form request-target (RFC 9112 3.2.2): the
// authority ends at the first '/', '?' or '#' (RFC 3986 3.2). "http://h/a?b" -> "/a?b",
// "http://h?b" -> "?b", "http://h" -> "". nullopt for a target that is not absolute-form.
std::optional<std::string_view> after_authority(std::string_view target);

// The path of a request-target, without query: "/a/b?c" -> "/a/b"; absolute-form
// "http://host/a?b" -> "/a", "http://host?b" -> "/".
std::string_view target_path(std::string_view target);

// Classifies a request path. A path under the challenge prefix whose last segment is not a
// base64url token of 1..256 characters is BadToken: answered 404 without touching any file,
// which is what keeps "..", "%2e%2e" and friends away from the filesystem.
PathKind classify(std::string_view path, std::string& token);

struct Answer {
    std::string body;
    const char* source = "";  // "store" | "webroot" | "thumbprint"
};

struct Sources {
    const TokenStore* store = nullptr;
    std::string webroot;     // empty: no webroot
    std::string thumbprint;  // empty: no stateless answers
};

// Finds the key authorization for a token that classify() accepted.
std::optional<Answer> find_answer(const Sources& s, const std::string& token);

// Reads WEBROOT/.well-known/acme-challenge/TOKEN without following a symbolic link at any step
// and only if it is a regular file of at most kMaxAnswerFile bytes.
constexpr size_t kMaxAnswerFile = 4096;
std::optional<std::string> read_webroot_token(const std::string& webroot, const std::string& token);

}  // namespace sniroute::http
