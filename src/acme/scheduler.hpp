// When to renew what. The decisions are pure functions of the state and the clock (tested
// table by table); the Scheduler is the coroutine that gathers the facts, asks them what to do
// next, and does it: sleep, or run one renewal (renewal.hpp) and record its outcome.
#pragma once

#include <uv.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "acme/cert_state.hpp"
#include "acme/client.hpp"
#include "acme/control_socket.hpp"
#include "acme/https_client.hpp"
#include "acme/task.hpp"
#include "http/challenge.hpp"
#include "route/router.hpp"

namespace sniroute::acme {

// When a certificate is due: missing or not covering its domains -> now; else a third of its
// lifetime before expiry, or inside the CA's ARI window when one is known for this very
// certificate; never before a back-off in force. A per-name offset (hash of the name) spreads
// renewals of many certificates and instances. Reads c.cert_file.
int64_t renewal_due(const config::Certificate& c, const CertState& st, int64_t now);

// What a failed renewal says about when to try again.
struct Failure {
    uint64_t retry_after_s = 0;  // the CA's Retry-After; 0 when it gave none
    bool rate_limited = false;   // the CA said rateLimited (or HTTP 429)
};

// Back-off after `failures` failures in a row, this one included: 60 s doubled per failure,
// capped at a day, plus jitter % (delay / 10 + 1) seconds (`jitter` is any random number);
// at least an hour when rate-limited; never shorter than Retry-After. Returns the unix time of
// the next attempt. A count below 1 counts as 1.
int64_t backoff_next_attempt(int failures, const Failure& f, int64_t now, uint64_t jitter);

// What a pass knows about one certificate.
struct CertFacts {
    int64_t due = 0;           // renewal_due(); not used when forced
    bool forced = false;       // a renew-now request waits for it
    bool pending = false;      // an issued pair waits to be installed and deployed
    int64_t next_attempt = 0;  // CertState::next_attempt
};

// A pair issued but not yet deployed (stopped or crashed mid-deploy) is finished now, or when a
// failed deploy's back-off ends: the certificate on disk may already be the new one, so
// renewal_due alone would wait for the next renewal.
int64_t effective_due(const CertFacts& f, int64_t now);

// The next step: renew certificates[renew] now, or sleep sleep_s seconds (a renew-now request
// or a reload wakes the scheduler earlier). The certificate due first is chosen, the earlier
// one on a tie; the sleep is an hour at most, so changes on disk are seen.
struct Plan {
    std::optional<size_t> renew;
    int64_t sleep_s = 0;
};
Plan plan_next(const std::vector<CertFacts>& certs, int64_t now);

// Whether to ask the CA about the renewal window of the certificate on disk, whose ARI ID is
// `id`: every six hours, and at once about a certificate other than the one last asked about.
bool ari_refresh_due(const CertState& st, const std::string& id, int64_t now);
// Records the answer: `window` (nullopt: the CA suggests none), or `failed` when the CA could
// not be asked, which keeps a window already known for the same certificate.
void record_renewal_info(CertState& st, const std::string& id, const std::optional<RenewalWindow>& window, bool failed,
                         int64_t now);

// The outcome of a renewal in st; both return the control socket's answer to a renew request.
// A success ends the back-off and forgets the ARI window, which was for the replaced
// certificate; its answer is an error when the deploy's check found a stale port.
std::string record_success(CertState& st, int64_t now);
// A failure counts, backs off (backoff_next_attempt) and is kept as last_error.
std::string record_failure(CertState& st, const std::string& error, const Failure& f, int64_t now, uint64_t jitter);

// What happened to one certificate since start-up, for /metrics.
struct CertCounts {
    uint64_t renewals_ok = 0;
    uint64_t renewals_failed = 0;
    uint64_t deploy_failures = 0;  // deploy command runs that failed, retries included
};

// The renewal loop on the control thread's loop. It reads the manager's current snapshot at
// the start of every pass, so a reload is seen at the next pass; `snap` must outlive it.
class Scheduler {
public:
    Scheduler(uv_loop_t* loop, const route::SnapshotPtr& snap, http::MemoryTokenStore& tokens, ControlServer& control);

    // Ends when stop() is called or no certificates are configured; throws when the account or
    // the CA bundle cannot be set up.
    Task<void> run();
    // A renew-now request: `conn` gets the result of the next renewal of `name`.
    void request(const std::string& name, ControlConn* conn);
    // Plans again now (a reload may have changed names or files).
    void wake() { wake_.cancel(); }
    // Cancels pending work; run() ends soon after.
    void stop();
    // Answers every request still waiting, once run() has ended.
    void answer_waiting(const std::string& text);

    // For /metrics, on the same loop: the counts by certificate name, and the state last read
    // or recorded (its `served` check says what each port served).
    const std::map<std::string, CertCounts>& counts() const { return counts_; }
    const std::map<std::string, CertState>& states() const { return states_; }

private:
    void set_up();
    void drop_unknown_requests(const config::Config& cfg);
    Task<Plan> plan_pass(route::SnapshotPtr snap);
    Task<void> renew_one(route::SnapshotPtr snap, const config::Certificate& c);

    uv_loop_t* loop_;
    const route::SnapshotPtr& snap_;
    http::MemoryTokenStore& tokens_;
    ControlServer& control_;
    Canceller cancel_;  // shutdown
    Canceller wake_;    // renew-now requests and reloads interrupt the sleep
    std::unique_ptr<TlsClientContext> tls_;
    std::unique_ptr<Client> client_;
    std::map<std::string, CertState> states_;
    std::map<std::string, std::vector<ControlConn*>> waiting_;  // renew-now replies pending per name
    std::map<std::string, bool> forced_;
    std::map<std::string, CertCounts> counts_;  // never erased: a counter must not go backwards
};

}  // namespace sniroute::acme
