// What the ACME client keeps on disk between runs, under [acme].storage:
//
//   account.key                    the account's private key (0600): it is the account
//   certs/NAME/state.json          CertState: failures, back-off, ARI window, last served check
//   certs/NAME/pending.{crt,key}   an issued pair whose install and deploy have not finished
//   control.sock                   the control socket (control_socket.hpp)
//
// Every file is replaced atomically (store.hpp), so a crash leaves the old or the new content.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "acme/cert.hpp"
#include "acme/key.hpp"
#include "config/config.hpp"

namespace sniroute::acme {

// Persistent per-certificate state, storage/certs/NAME/state.json.
struct CertState {
    std::string last_error;
    int failures = 0;
    int64_t next_attempt = 0;  // unix seconds; 0 = no back-off in force
    int64_t last_success = 0;
    int64_t ari_start = 0, ari_end = 0;
    int64_t ari_checked = 0;
    std::string ari_cert;                             // the ARI certificate ID the window belongs to
    nlohmann::json served = nlohmann::json::array();  // last served-certificate check

    nlohmann::json to_json() const;
    // Tolerant: a missing or mistyped member keeps its default, so a damaged state file costs
    // at most an early renewal, never the ACME client.
    static CertState from_json(const nlohmann::json& j);
};

// The files of one certificate's directory, storage/certs/NAME: the one place that spells them.
struct CertFiles {
    std::string dir;
    std::string state;        // dir/state.json
    std::string pending_crt;  // dir/pending.crt
    std::string pending_key;  // dir/pending.key
};

CertFiles cert_files(const config::Config& cfg, const std::string& name);
std::string state_path(const config::Config& cfg, const std::string& name);
CertState load_state(const config::Config& cfg, const std::string& name);
// Creates the directory (0700) and replaces state.json (0600); a failure is logged, not thrown:
// a state file that cannot be written costs an early renewal at worst.
void save_state(const config::Config& cfg, const std::string& name, const CertState& st);

// True if every one of `domains` is a dNSName of the certificate.
bool covers(const CertInfo& info, const std::vector<std::string>& domains);

// An issued pair that the renewal saved and whose install and deploy have not finished: a crash
// or stop after the download, during settle, or during the deploy commands.
struct PendingPair {
    std::string chain, key_pem;
    CertInfo info;
};

// The pending pair, as long as it is whole (key matching certificate), covers c's names and
// has not expired; nullopt otherwise.
std::optional<PendingPair> read_pending(const CertFiles& files, const config::Certificate& c);
// Key first: a pending.crt is only trusted together with a matching pending.key.
bool write_pending(const CertFiles& files, const std::string& chain, const std::string& key_pem, std::string& err);
void remove_pending(const CertFiles& files);

// Creates the storage directory if need be, and reads storage/account.key, or creates it once
// (P-256, 0600). Throws std::runtime_error when either cannot be done or the file is no key.
Key load_account_key(const std::string& storage);

// Removes the temporary files a kill -9 mid-write left beside every file the client replaces.
// Only for start-up, when this process, their only writer, has nothing in flight.
void remove_stale_files(const config::Config& cfg);

}  // namespace sniroute::acme
