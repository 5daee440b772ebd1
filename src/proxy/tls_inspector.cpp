// The TLS ClientHello: routes by its server name, and holds the TLS side of refusing a client.
//
// A refusal is told in TLS (a fatal alert record) only to a client that spoke TLS first; a
// plain-text client (NotTls) is just closed, since an alert would be noise to it.
#include <memory>
#include <optional>

#include "proxy/inspector.hpp"
#include "tls/client_hello.hpp"

namespace sniroute::proxy {

namespace {

// A TLS alert record (RFC 8446 section 6):
//   0x15        content type: alert
//   0x03 0x03   legacy record version: TLS 1.2
//   0x00 0x02   length: 2
//   0x02        level: fatal
//   XX          description
constexpr char kAlertDecodeError[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 50};
constexpr char kAlertInternalError[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 80};
constexpr char kAlertUnrecognizedName[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 112};

constexpr std::string_view alert(const char (&record)[7]) { return {record, sizeof record}; }

class TlsInspector final : public Inspector {
public:
    TlsInspector(size_t max_bytes, ListenerStats* stats) : stats_(stats) { hello_.emplace(max_bytes); }

    Verdict inspect(std::string_view bytes) override {
        if (!hello_) return routed();
        // The parser is incremental and keeps no pointer into our bytes: it is fed each byte once.
        if (fed_ < bytes.size()) {
            hello_->feed(reinterpret_cast<const uint8_t*>(bytes.data()) + fed_, bytes.size() - fed_);
            fed_ = bytes.size();
        }
        switch (hello_->status()) {
            case tls::ParseStatus::NeedMore: return Verdict::need_more();
            case tls::ParseStatus::Done: break;
            case tls::ParseStatus::NotTls:
                count(HelloResult::NotTls);
                return Verdict::refuse(Outcome::BadHello, hello_->error());
            case tls::ParseStatus::Malformed:
            case tls::ParseStatus::TooLarge:
                count(hello_->status() == tls::ParseStatus::TooLarge ? HelloResult::TooLarge : HelloResult::Malformed);
                return Verdict::refuse(Outcome::BadHello, hello_->error(), alert(kAlertDecodeError));
        }
        if (hello_->info().has_sni) sni_ = hello_->info().sni;
        count(sni_.empty() ? HelloResult::NoSni : HelloResult::Sni);
        // Only until the hello is parsed: its buffers are not kept for the life of the connection.
        // The hello itself stays in the session's bytes and goes to the backend first.
        hello_.reset();
        return routed();
    }

    const char* timeout_reason() const override { return "no complete ClientHello in time"; }
    void timed_out() override { count(HelloResult::Timeout); }

    // Asked only after a Route verdict: this client spoke TLS.
    std::string_view refusal(Outcome o) const override {
        if (o == Outcome::NoRoute) return alert(kAlertUnrecognizedName);
        if (o == Outcome::BackendDown) return alert(kAlertInternalError);
        return {};
    }

private:
    void count(HelloResult r) {
        if (stats_) stats_->hellos[static_cast<size_t>(r)].add();
    }

    Verdict routed() const {
        Verdict v;
        v.kind = Verdict::Kind::Route;
        v.name = sni_;
        return v;
    }

    // In the inspector, not beside it: one allocation per connection for both.
    std::optional<tls::ClientHelloParser> hello_;
    ListenerStats* stats_;
    size_t fed_ = 0;
    std::string sni_;
};

}  // namespace

std::unique_ptr<Inspector> make_tls_inspector(size_t max_client_hello, ListenerStats* stats) {
    return std::make_unique<TlsInspector>(max_client_hello, stats);
}

}  // namespace sniroute::proxy
