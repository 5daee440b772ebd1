#include "http/challenge.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fd.hpp"
#include "core/host_name.hpp"

namespace sniroute::http {

void MemoryTokenStore::put(std::string token, std::string key_authorization) {
    std::lock_guard lock(mu_);
    tokens_[std::move(token)] = std::move(key_authorization);
}

void MemoryTokenStore::remove(std::string_view token) {
    std::lock_guard lock(mu_);
    if (auto it = tokens_.find(token); it != tokens_.end()) tokens_.erase(it);
}

std::optional<std::string> MemoryTokenStore::key_authorization(std::string_view token) const {
    std::lock_guard lock(mu_);
    if (auto it = tokens_.find(token); it != tokens_.end()) return it->second;
    return std::nullopt;
}

std::optional<std::string_view> after_authority(std::string_view target) {
    size_t scheme = target.find("://");
    if (target.starts_with("/") || scheme == std::string_view::npos) return std::nullopt;
    std::string_view rest = target.substr(scheme + 3);
    size_t end = rest.find_first_of("/?#");
    return end == std::string_view::npos ? std::string_view() : rest.substr(end);
}

std::string_view target_path(std::string_view target) {
    if (auto rest = after_authority(target)) {
        if (!rest->starts_with("/")) return "/";
        target = *rest;
    }
    return target.substr(0, target.find('?'));
}

PathKind classify(std::string_view path, std::string& token) {
    if (!path.starts_with(kChallengePrefix)) return PathKind::Other;
    std::string_view t = path.substr(kChallengePrefix.size());
    if (t.empty() || t.size() > kMaxToken) return PathKind::BadToken;
    for (char c : t)
        if (!core::is_base64url_char(c)) return PathKind::BadToken;
    token.assign(t);
    return PathKind::Challenge;
}

std::optional<std::string> read_webroot_token(const std::string& webroot, const std::string& token) {
    // Walk one component at a time with O_NOFOLLOW, so no symbolic link anywhere below the
    // webroot can lead out of it. The token itself was checked to be base64url, so it has no
    // '/' and cannot be "." or "..".
    core::Fd root(::open(webroot.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (root.get() < 0) return std::nullopt;
    core::Fd wk(::openat(root.get(), ".well-known", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (wk.get() < 0) return std::nullopt;
    core::Fd ac(::openat(wk.get(), "acme-challenge", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (ac.get() < 0) return std::nullopt;
    // O_NONBLOCK: a FIFO planted there must not stall the event loop on open.
    core::Fd f(::openat(ac.get(), token.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (f.get() < 0) return std::nullopt;
    struct stat st {};
    if (::fstat(f.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > static_cast<off_t>(kMaxAnswerFile))
        return std::nullopt;
    std::string body(static_cast<size_t>(st.st_size), '\0');
    size_t got = 0;
    while (got < body.size()) {
        ssize_t n = ::read(f.get(), body.data() + got, body.size() - got);
        if (n <= 0) break;
        got += static_cast<size_t>(n);
    }
    body.resize(got);
    // Some tools write a trailing newline; the key authorization never contains whitespace.
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r' || body.back() == ' ')) body.pop_back();
    return body;
}

std::optional<Answer> find_answer(const Sources& s, const std::string& token) {
    if (s.store)
        if (auto ka = s.store->key_authorization(token)) return Answer{std::move(*ka), "store"};
    if (!s.webroot.empty())
        if (auto ka = read_webroot_token(s.webroot, token)) return Answer{std::move(*ka), "webroot"};
    if (!s.thumbprint.empty()) return Answer{token + "." + s.thumbprint, "thumbprint"};
    return std::nullopt;
}

}  // namespace sniroute::http
