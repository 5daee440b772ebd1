#include "acme/cert_state.hpp"

#include <unistd.h>

#include <stdexcept>
#include <type_traits>

#include "acme/store.hpp"
#include "core/log.hpp"
#include "core/time.hpp"

namespace sniroute::acme {

using nlohmann::json;

namespace {

constexpr size_t kMaxCertFile = 1 << 20;
constexpr size_t kMaxKeyFile = 1 << 16;

// A member of the state file, or `def` when it is missing or of another type.
template <class T>
T member(const json& j, const char* key, T def) {
    auto it = j.find(key);
    if (it == j.end()) return def;
    if constexpr (std::is_same_v<T, std::string>)
        return it->is_string() ? it->template get<std::string>() : def;
    else
        return it->is_number_integer() ? it->template get<T>() : def;
}

}  // namespace

json CertState::to_json() const {
    return {{"last_error", last_error},     {"failures", failures},   {"next_attempt", next_attempt},
            {"last_success", last_success}, {"ari_start", ari_start}, {"ari_end", ari_end},
            {"ari_checked", ari_checked},   {"ari_cert", ari_cert},   {"served", served}};
}

CertState CertState::from_json(const json& j) {
    CertState s;
    if (!j.is_object()) return s;
    s.last_error = member(j, "last_error", std::string());
    // The back-off shifts by this count and increments it: a negative or huge one is damage too.
    int64_t failures = member(j, "failures", int64_t{0});
    s.failures = failures >= 0 && failures <= 1'000'000 ? static_cast<int>(failures) : 0;
    s.next_attempt = member(j, "next_attempt", int64_t{0});
    s.last_success = member(j, "last_success", int64_t{0});
    s.ari_start = member(j, "ari_start", int64_t{0});
    s.ari_end = member(j, "ari_end", int64_t{0});
    s.ari_checked = member(j, "ari_checked", int64_t{0});
    s.ari_cert = member(j, "ari_cert", std::string());
    if (j.contains("served") && j["served"].is_array()) s.served = j["served"];
    return s;
}

CertFiles cert_files(const config::Config& cfg, const std::string& name) {
    CertFiles f;
    f.dir = cfg.acme.storage + "/certs/" + name;
    f.state = f.dir + "/state.json";
    f.pending_crt = f.dir + "/pending.crt";
    f.pending_key = f.dir + "/pending.key";
    return f;
}

std::string state_path(const config::Config& cfg, const std::string& name) { return cert_files(cfg, name).state; }

CertState load_state(const config::Config& cfg, const std::string& name) {
    auto text = read_file(state_path(cfg, name), kMaxCertFile);
    return text ? CertState::from_json(json::parse(*text, nullptr, false)) : CertState{};
}

void save_state(const config::Config& cfg, const std::string& name, const CertState& st) {
    CertFiles files = cert_files(cfg, name);
    std::string err;
    if (!ensure_dir(files.dir, 0700, err) || !write_file_atomic(files.state, st.to_json().dump(2), 0600, err))
        core::log_error("acme_state_write_failed").kv("certificate", name).kv("error", err);
}

bool covers(const CertInfo& info, const std::vector<std::string>& domains) {
    for (const auto& d : domains) {
        bool found = false;
        for (const auto& n : info.dns_names) found = found || n == d;
        if (!found) return false;
    }
    return true;
}

std::optional<PendingPair> read_pending(const CertFiles& files, const config::Certificate& c) {
    auto pc = read_file(files.pending_crt, kMaxCertFile);
    auto pk = read_file(files.pending_key, kMaxKeyFile);
    std::optional<Key> pkey = pk ? Key::from_pem(*pk) : std::nullopt;
    std::optional<CertInfo> pinfo = pc ? parse_cert_pem(*pc) : std::nullopt;
    if (!pkey || !pinfo || !key_matches_cert(*pkey, *pc) || !covers(*pinfo, c.domains) ||
        pinfo->not_after <= core::unix_now_s())
        return std::nullopt;
    return PendingPair{std::move(*pc), std::move(*pk), std::move(*pinfo)};
}

bool write_pending(const CertFiles& files, const std::string& chain, const std::string& key_pem, std::string& err) {
    return write_file_atomic(files.pending_key, key_pem, 0600, err) &&
           write_file_atomic(files.pending_crt, chain, 0644, err);
}

void remove_pending(const CertFiles& files) {
    ::unlink(files.pending_crt.c_str());
    ::unlink(files.pending_key.c_str());
}

Key load_account_key(const std::string& storage) {
    std::string err;
    if (!ensure_dir(storage, 0700, err)) throw std::runtime_error("storage " + storage + ": " + err);
    // The account key is created once and kept, mode 0600: it is the account.
    std::string path = storage + "/account.key";
    if (auto pem = read_file(path, kMaxKeyFile)) {
        std::optional<Key> key = Key::from_pem(*pem);
        if (!key) throw std::runtime_error(path + " is not a private key");
        return std::move(*key);
    }
    Key key = Key::generate(KeyType::EcdsaP256);
    if (!write_file_atomic(path, key.private_pem(), 0600, err)) throw std::runtime_error(path + ": " + err);
    core::log_info("acme_account_key_created").kv("path", path);
    return key;
}

void remove_stale_files(const config::Config& cfg) {
    for (const auto& c : cfg.certificates) {
        CertFiles files = cert_files(cfg, c.name);
        for (const std::string& f : {c.cert_file, c.key_file, c.cert_file + ".prev", c.key_file + ".prev",
                                     files.pending_crt, files.pending_key, files.state})
            remove_stale_temps(f, 0);
    }
    remove_stale_temps(cfg.acme.storage + "/account.key", 0);
}

}  // namespace sniroute::acme
