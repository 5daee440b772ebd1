// The PROXY header a trusted balancer sends first (v1 text or v2 binary). Its addresses replace
// the connection's own in logs and in the header we send on; the header itself is consumed and
// never reaches the backend.
#include <memory>

#include "proxy/inspector.hpp"

namespace sniroute::proxy {

namespace {

class ProxyHeaderInspector final : public Inspector {
public:
    // The codec is pure and cheap to run from the start, so each call parses all of `bytes`
    // again instead of keeping a state machine: a header is one or two reads.
    Verdict inspect(std::string_view bytes) override {
        const char* why = "";
        auto st = parse_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), kMaxProxyHeader, ph_, why);
        if (st == HeaderStatus::NeedMore) return Verdict::need_more();
        if (st == HeaderStatus::Malformed) return Verdict::refuse(Outcome::BadProxyHeader, why);
        Verdict v;
        v.kind = Verdict::Kind::Next;
        v.consumed = ph_.length;
        v.peer = ph_.local ? nullptr : &ph_;
        return v;
    }

    Outcome truncated(const char*& why) const override {
        why = "client closed inside the PROXY header";
        return Outcome::BadProxyHeader;
    }

    const char* timeout_reason() const override { return "no PROXY header in time"; }

private:
    ParsedHeader ph_;
};

}  // namespace

std::unique_ptr<Inspector> make_proxy_header_inspector() { return std::make_unique<ProxyHeaderInspector>(); }

}  // namespace sniroute::proxy
