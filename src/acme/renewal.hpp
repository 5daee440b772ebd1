// One renewal of one certificate, step by step:
//
//   issue    order a new certificate, or resume with the pending pair a crash or stop left
//   settle   wait `settle` before deploying (CT log lag)
//   install  replace cert_file and key_file atomically, keeping the previous pair as .prev
//   deploy   run the deploy commands (timeout, two retries); only then is the pending pair let go
//   check    connect to every TLS route serving one of the names and compare the served leaf,
//            re-checking the stale ones a few seconds apart
//
// When and how often is the scheduler's business (scheduler.hpp).
#pragma once

#include <uv.h>

#include "acme/cert_state.hpp"
#include "acme/client.hpp"
#include "acme/task.hpp"
#include "route/router.hpp"

namespace sniroute::acme {

// What a renewal borrows from its owner, which outlives it.
struct RenewalContext {
    uv_loop_t* loop;
    Client& client;
    Canceller& cancel;                    // shutdown: the renewal throws FetchError("cancelled") at its next step
    uint64_t* deploy_failures = nullptr;  // counts every failed deploy command run, for /metrics
};

// Runs every step for c, which belongs to snap's config; the renewal holds snap, so a reload
// during it cannot free the config it reads. Throws on the first failed step before the check;
// a check that finds a stale port sets st.last_error (and st.served) instead. st.last_error is
// cleared at the start.
Task<void> renew(RenewalContext ctx, route::SnapshotPtr snap, const config::Certificate& c, CertState& st);

}  // namespace sniroute::acme
