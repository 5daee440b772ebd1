#include <doctest.h>

#include "config/config.hpp"
#include "http/front.hpp"

using namespace sniroute;
using http::Action;

namespace {

// Listener 0 has routes for every acme mode and a default backend; listener 1 has none.
const char* kConfig = R"(
[[listeners]]
name = "http"
bind = ["127.0.0.1:1080"]
protocol = "http"
default_backend = "fallback"
  [[listeners.routes]]
  match = ["auto.test"]
  backend = "web"
  redirect_https = true
  [[listeners.routes]]
  match = ["local.test"]
  backend = "web"
  acme = "local"
  [[listeners.routes]]
  match = ["own.test"]
  backend = "own"
  acme = "backend"
  redirect_https = true
[[listeners]]
name = "bare"
bind = ["127.0.0.1:1081"]
protocol = "http"
[backends.web]
servers = ["127.0.0.1:1"]
[backends.own]
servers = ["127.0.0.1:2"]
[backends.fallback]
servers = ["127.0.0.1:3"]
)";

const route::Snapshot& snapshot() {
    static route::Snapshot snap = [] {
        auto r = config::load_string(kConfig, "front_test.toml");
        REQUIRE(r.config);
        return route::Snapshot(std::move(*r.config));
    }();
    return snap;
}

Action run(const std::string& req, size_t listener = 0, const http::Sources& src = {}) {
    http::RequestHeadParser p(8192);
    REQUIRE(p.feed(req.data(), req.size()) == http::HeadStatus::Done);
    return http::decide(p.head(), snapshot(), listener, src);
}

std::string get(const std::string& path, const std::string& host, const std::string& method = "GET") {
    return method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
}

const std::string kChallenge = "/.well-known/acme-challenge/tok";

}  // namespace

TEST_CASE("parse_host") {
    std::string name, auth;
    CHECK(http::parse_host("Mail.Example.com:8080", name, auth));
    CHECK(name == "mail.example.com");
    CHECK(auth == "mail.example.com");
    CHECK(http::parse_host(" a.test ", name, auth));
    CHECK(http::parse_host("[::1]:80", name, auth));
    CHECK(name.empty());
    CHECK(auth == "[::1]");
    CHECK(http::parse_host("a:1", name, auth));
    CHECK(http::parse_host("a:65535", name, auth));
    CHECK(http::parse_host("[::1]:65535", name, auth));
    for (const char* bad : {"",        "a b",           "a:",      "a:x",         "a:123456", "[::1",    "[zz]",
                            "a/b",     "a%2e",          "[::1]x",  "a_b.test",    "a:0",      "a:00000", "a:65536",
                            "a:99999", "a:99999999999", "[::1]:0", "[::1]:65536", "a:-1",     "a:+80"}) {
        CAPTURE(bad);
        CHECK_FALSE(http::parse_host(bad, name, auth));
    }
}

TEST_CASE("auto: a local answer wins, otherwise the backend gets the challenge") {
    http::MemoryTokenStore store;
    store.put("tok", "tok.KEY");
    http::Sources with{&store, "", ""};
    Action a = run(get(kChallenge, "auto.test"), 0, with);
    CHECK(a.kind == Action::Kind::Respond);
    CHECK(a.status == 200);
    CHECK(a.response.find("\r\n\r\ntok.KEY") != std::string::npos);
    CHECK(a.response.find("Content-Type: text/plain") != std::string::npos);
    CHECK(a.keep_alive);
    // No source has it: forwarded, not redirected, although the route redirects.
    a = run(get(kChallenge, "auto.test"));
    CHECK(a.kind == Action::Kind::Forward);
    CHECK(a.backend->name == "web");
}

TEST_CASE("local: sources only, 404 otherwise") {
    Action a = run(get(kChallenge, "local.test"));
    CHECK(a.kind == Action::Kind::Respond);
    CHECK(a.status == 404);
    a = run(get(kChallenge, "local.test"), 0, {nullptr, "", "THUMB"});
    CHECK(a.status == 200);
    CHECK(a.response.ends_with("tok.THUMB"));
}

TEST_CASE("backend: always forwarded, even with a thumbprint configured") {
    Action a = run(get(kChallenge, "own.test"), 0, {nullptr, "", "THUMB"});
    CHECK(a.kind == Action::Kind::Forward);
    CHECK(a.backend->name == "own");
    // ...while everything else on that host is redirected.
    a = run(get("/", "own.test"));
    CHECK(a.status == 308);
    CHECK(a.response.find("Location: https://own.test/\r\n") != std::string::npos);
}

TEST_CASE("redirects keep path and query, drop the port") {
    Action a = run(get("/p/q?x=1&y=%20", "AUTO.test:8080"));
    CHECK(a.status == 308);
    CHECK(a.response.find("Location: https://auto.test/p/q?x=1&y=%20\r\n") != std::string::npos);
    a = run("GET http://auto.test/abs?q HTTP/1.1\r\nHost: auto.test\r\n\r\n");
    CHECK(a.response.find("Location: https://auto.test/abs?q\r\n") != std::string::npos);
}

TEST_CASE("redirects of absolute, asterisk and authority forms are well formed") {
    struct Case {
        const char* line;
        const char* location;
    };
    for (Case c : {Case{"GET http://auto.test?x=1 HTTP/1.1", "https://auto.test/?x=1"},
                   Case{"GET http://auto.test HTTP/1.1", "https://auto.test/"},
                   Case{"GET http://auto.test/a/b?c HTTP/1.1", "https://auto.test/a/b?c"},
                   Case{"OPTIONS * HTTP/1.1", "https://auto.test/"},
                   Case{"CONNECT auto.test:443 HTTP/1.1", "https://auto.test/"}}) {
        CAPTURE(c.line);
        Action a = run(std::string(c.line) + "\r\nHost: auto.test\r\n\r\n");
        CHECK(a.status == 308);
        CHECK(a.response.find(std::string("\r\nLocation: ") + c.location + "\r\n") != std::string::npos);
    }
}

TEST_CASE("HEAD gets headers without a body") {
    Action a = run(get(kChallenge, "local.test", "HEAD"), 0, {nullptr, "", "THUMB"});
    CHECK(a.status == 200);
    CHECK(a.response.find("Content-Length: 9\r\n") != std::string::npos);
    CHECK(a.response.ends_with("\r\n\r\n"));
}

TEST_CASE("bad tokens are 404 on every route, never forwarded") {
    for (const char* host : {"auto.test", "own.test", "nomatch.test"}) {
        CAPTURE(host);
        Action a = run(get("/.well-known/acme-challenge/..%2f..%2fetc", host));
        CHECK(a.kind == Action::Kind::Respond);
        CHECK(a.status == 404);
    }
}

TEST_CASE("unmatched hosts: default backend, else 421 or 404 for challenges") {
    Action a = run(get("/", "nomatch.test"));
    CHECK(a.kind == Action::Kind::Forward);
    CHECK(a.backend->name == "fallback");
    a = run(get(kChallenge, "nomatch.test"));
    CHECK(a.kind == Action::Kind::Forward);  // auto against the default backend
    a = run(get("/", "nomatch.test"), 1);
    CHECK(a.status == 421);
    a = run(get(kChallenge, "nomatch.test"), 1);
    CHECK(a.status == 404);
    a = run(get(kChallenge, "nomatch.test"), 1, {nullptr, "", "THUMB"});
    CHECK(a.status == 200);
}

TEST_CASE("Host header problems are 400 and close the connection") {
    const std::string cases[] = {
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
    };
    for (const auto& req : cases) {
        CAPTURE(req);
        Action a = run(req);
        CHECK(a.status == 400);
        CHECK_FALSE(a.keep_alive);
        CHECK(a.response.find("Connection: close") != std::string::npos);
    }
    // HTTP/1.0 may omit Host: it goes to the default backend.
    Action a = run("GET / HTTP/1.0\r\n\r\n");
    CHECK(a.kind == Action::Kind::Forward);
}

TEST_CASE("a locally answered request with a body closes the connection") {
    Action a = run("POST /x HTTP/1.1\r\nHost: auto.test\r\nContent-Length: 3\r\n\r\n");
    CHECK(a.status == 308);
    CHECK_FALSE(a.keep_alive);
}

TEST_CASE("a Host port outside 1-65535 is 400") {
    for (const char* host : {"auto.test:0", "auto.test:65536", "auto.test:99999999999", "[::1]:70000"}) {
        CAPTURE(host);
        Action a = run(get("/", host));
        CHECK(a.status == 400);
        CHECK_FALSE(a.keep_alive);
    }
    CHECK(run(get("/", "auto.test:65535")).status == 308);
}

TEST_CASE("absolute-form: the target's authority wins over Host (RFC 9112 3.2.2)") {
    // Routed by the target: own.test's backend, auto.test's redirect, the default backend.
    Action a = run("GET http://own.test" + kChallenge + " HTTP/1.1\r\nHost: auto.test\r\n\r\n");
    REQUIRE(a.kind == Action::Kind::Forward);
    CHECK(a.backend->name == "own");
    CHECK(a.host == "own.test");
    a = run("GET HTTP://Auto.Test:8080/p?q HTTP/1.1\r\nHost: own.test\r\n\r\n");
    CHECK(a.status == 308);
    CHECK(a.response.find("\r\nLocation: https://auto.test/p?q\r\n") != std::string::npos);
    a = run("GET https://nomatch.test/ HTTP/1.1\r\nHost: own.test\r\n\r\n");
    REQUIRE(a.kind == Action::Kind::Forward);
    CHECK(a.backend->name == "fallback");
    // A name no route matches reaches no backend, whatever route Host names (listener 1 has
    // neither routes nor a default backend).
    a = run("GET http://nomatch.test/ HTTP/1.1\r\nHost: auto.test\r\n\r\n", 1);
    CHECK(a.status == 421);
    // HTTP/1.0 without Host is routed by the target too.
    a = run("GET http://own.test" + kChallenge + " HTTP/1.0\r\n\r\n");
    REQUIRE(a.kind == Action::Kind::Forward);
    CHECK(a.backend->name == "own");
}

TEST_CASE("absolute-form: a bad authority or scheme is 400, and Host is still required") {
    // Some of these llhttp refuses already (Bad is a 400 too); the rest decide() must.
    auto status_of = [](const std::string& req) {
        http::RequestHeadParser p(8192);
        http::HeadStatus st = p.feed(req.data(), req.size());
        if (st == http::HeadStatus::Bad) return 400;
        REQUIRE(st == http::HeadStatus::Done);
        Action a = http::decide(p.head(), snapshot(), 0, {});
        CHECK((a.status != 400 || !a.keep_alive));
        return a.status;
    };
    for (const char* line : {"GET http://a:0/ HTTP/1.1", "GET http://a:65536/ HTTP/1.1", "GET http:///x HTTP/1.1",
                             "GET http://user@auto.test/ HTTP/1.1", "GET http://a_b.test/ HTTP/1.1",
                             "GET ftp://auto.test/ HTTP/1.1", "GET x?y=http://auto.test/ HTTP/1.1"}) {
        CAPTURE(line);
        CHECK(status_of(std::string(line) + "\r\nHost: auto.test\r\n\r\n") == 400);
    }
    CHECK(status_of("GET http://auto.test/ HTTP/1.1\r\n\r\n") == 400);
    CHECK(status_of("GET http://auto.test/ HTTP/1.1\r\nHost: a:0\r\n\r\n") == 400);
}

TEST_CASE("no control byte reaches a Location header") {
    // The head parser refuses these targets; decide() and make_response() refuse them again.
    for (const char* target : {"/x?y\x0c", "/\t", "/a\r\nSet-Cookie: x=1", "/a b", "/\x7f", "http://auto.test/\x01"}) {
        CAPTURE(target);
        http::RequestHead h;
        h.method = "GET";
        h.target = target;
        h.host = "auto.test";
        h.host_count = 1;
        h.keep_alive = true;
        Action a = http::decide(h, snapshot(), 0, {});
        CHECK(a.status == 400);
        CHECK(a.response.find("Location") == std::string::npos);
    }
    std::string r = http::make_response(308, "x\n", false, true, "https://a/\r\nSet-Cookie: x=1");
    CHECK(r.find("Location") == std::string::npos);
    CHECK(r.find("Set-Cookie") == std::string::npos);
    CHECK(http::make_response(308, "", false, true, "https://a/b").find("\r\nLocation: https://a/b\r\n") !=
          std::string::npos);
}
