// The port-80 front as an inspector: reads request heads and turns the decision of
// src/http/front.cpp into verdicts. A request answered here (ACME challenge, redirect, error)
// is an Answer, and the inspector goes on with the next pipelined request; a request for a
// backend is a Route, and the head it read is replayed to the backend byte for byte.
#include <memory>

#include "core/log.hpp"
#include "http/front.hpp"
#include "http/request_head.hpp"
#include "proxy/inspector.hpp"

namespace sniroute::proxy {

namespace {

class HttpInspector final : public Inspector {
public:
    explicit HttpInspector(const InspectEnv& env)
        : env_(env), listener_(env.snap.listener(env.listener)), parser_(env.snap.config().global.max_http_head) {}

    Verdict inspect(std::string_view bytes) override {
        if (fed_ >= bytes.size()) return Verdict::need_more();  // nothing new
        http::HeadStatus st = parser_.feed(bytes.data() + fed_, bytes.size() - fed_);
        fed_ = bytes.size();
        if (st == http::HeadStatus::NeedMore) return Verdict::need_more();
        if (st == http::HeadStatus::Bad || st == http::HeadStatus::TooLarge) {
            int status = st == http::HeadStatus::Bad ? 400 : 431;
            core::log_warn("http")
                .kv("client", env_.client.get().to_string())
                .kv("listener", listener_.name)
                .kv("status", status)
                .kv("error", parser_.error());
            count(status, "error");
            // The connection cannot be trusted past a bad head: answer and close.
            return answer(http::make_response(status, std::string(parser_.error()) + "\n", false, false), false, 0);
        }

        const http::RequestHead& rh = parser_.head();
        const config::Acme& acme = env_.snap.config().acme;
        http::Sources sources{&env_.tokens, acme.webroot, acme.account_thumbprint};
        http::Action a = http::decide(rh, env_.snap, env_.listener, sources);
        if (a.kind == http::Action::Kind::Forward) {
            // From here on the connection is the backend's.
            host_ = std::move(a.host);
            count(0, "forward");
            // The route is counted here: the session counts only what it routes by name itself.
            if (env_.stats) bump(env_.stats->routes, a.route ? std::string_view(a.route->match.front()) : "default");
            Verdict v;
            v.kind = Verdict::Kind::Route;
            v.name = host_;
            v.backend = a.backend;
            return v;
        }
        if (env_.snap.config().global.access_log) {
            core::log_info("http")
                .kv("client", env_.client.get().to_string())
                .kv("listener", listener_.name)
                .kv("host", a.host.empty() ? rh.host : a.host)
                .kv("method", rh.method)
                .kv("path", rh.target)
                .kv("status", a.status)
                .kv("source", a.source);
        }
        count(a.status, action_of(a.source));
        size_t consumed = rh.head_len;
        parser_.reset();
        fed_ = 0;
        return answer(std::move(a.response), a.keep_alive, consumed);
    }

    const char* timeout_reason() const override { return "no complete request head in time"; }

private:
    // The `action` label of sniroute_http_requests_total for a decision's log source.
    static const char* action_of(std::string_view source) {
        if (source == "store") return "challenge_store";
        if (source == "webroot") return "challenge_webroot";
        if (source == "thumbprint") return "challenge_thumbprint";
        if (source == "redirect") return "redirect";
        return "error";
    }

    // One request answered (status 0: forwarded, whose status is the backend's to give).
    void count(int status, const char* action) {
        if (!env_.stats) return;
        std::string key = status ? std::to_string(status) : std::string();
        key += ' ';
        key += action;
        bump(env_.stats->http_requests, key);
    }
    void bump(KeyedCounts& counts, std::string_view key) { env_.worker_stats->keyed(counts, key).count.add(); }

    static Verdict answer(std::string response, bool keep_alive, size_t consumed) {
        Verdict v;
        v.kind = Verdict::Kind::Answer;
        v.bytes = std::move(response);
        v.keep_alive = keep_alive;
        v.consumed = consumed;
        return v;
    }

    const InspectEnv env_;
    const config::Listener& listener_;
    http::RequestHeadParser parser_;
    size_t fed_ = 0;  // bytes given to the parser for the current request
    std::string host_;
};

}  // namespace

std::unique_ptr<Inspector> make_http_inspector(const InspectEnv& env) { return std::make_unique<HttpInspector>(env); }

}  // namespace sniroute::proxy
