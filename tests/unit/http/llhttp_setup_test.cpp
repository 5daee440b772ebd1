#include <doctest.h>

#include <string>
#include <type_traits>

#include "http/llhttp_setup.hpp"

using namespace sniroute::http;

namespace {

// Only noexcept callbacks can be wired in: one that may throw does not convert.
[[maybe_unused]] int may_throw(llhttp_t*) { return 0; }
static_assert(!std::is_convertible_v<decltype(&may_throw), EventCallback>);

// Records what llhttp reported, reached through the parser's data pointer.
struct Owner {
    std::string url;
    std::string body;
    int heads = 0;
    int messages = 0;

    static Owner* of(llhttp_t* p) noexcept { return static_cast<Owner*>(p->data); }
    static int on_url(llhttp_t* p, const char* at, size_t n) noexcept {
        of(p)->url.append(at, n);
        return 0;
    }
    static int on_body(llhttp_t* p, const char* at, size_t n) noexcept {
        of(p)->body.append(at, n);
        return 0;
    }
    static int on_headers_complete(llhttp_t* p) noexcept {
        ++of(p)->heads;
        return 0;
    }
    static int on_message_complete(llhttp_t* p) noexcept {
        ++of(p)->messages;
        return 0;
    }
};

}  // namespace

TEST_CASE("start_parser wires the given callbacks to the owner and leaves the rest out") {
    Owner o;
    llhttp_t parser{};
    llhttp_settings_t settings{};
    start_parser(parser, settings, HTTP_REQUEST,
                 {.on_url = Owner::on_url,
                  .on_headers_complete = Owner::on_headers_complete,
                  .on_body = Owner::on_body,
                  .on_message_complete = Owner::on_message_complete},
                 &o);
    CHECK(parser.data == &o);
    CHECK((settings.on_header_field == nullptr));
    CHECK((settings.on_header_value_complete == nullptr));
    const std::string req = "POST /a?b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz";
    REQUIRE(llhttp_execute(&parser, req.data(), req.size()) == HPE_OK);
    CHECK(o.url == "/a?b");
    CHECK(o.body == "xyz");
    CHECK(o.heads == 1);
    CHECK(o.messages == 1);
}

TEST_CASE("start_parser again restarts a parser that stopped on an error") {
    Owner o;
    llhttp_t parser{};
    llhttp_settings_t settings{};
    start_parser(parser, settings, HTTP_RESPONSE, {.on_body = Owner::on_body}, &o);
    const std::string junk = "not http\r\n\r\n";
    REQUIRE(llhttp_execute(&parser, junk.data(), junk.size()) != HPE_OK);
    start_parser(parser, settings, HTTP_RESPONSE, {.on_body = Owner::on_body}, &o);
    const std::string res = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    CHECK(llhttp_execute(&parser, res.data(), res.size()) == HPE_OK);
    CHECK(parser.status_code == 200);
    CHECK(o.body == "ok");
}

TEST_CASE("start_parser turns every llhttp leniency off") {
    Owner o;
    llhttp_t parser{};
    llhttp_settings_t settings{};
    start_parser(parser, settings, HTTP_REQUEST, {.on_url = Owner::on_url}, &o);
    llhttp_set_lenient_headers(&parser, 1);
    llhttp_set_lenient_chunked_length(&parser, 1);
    llhttp_set_lenient_keep_alive(&parser, 1);
    llhttp_set_lenient_transfer_encoding(&parser, 1);
    parser.lenient_flags |= LENIENT_VERSION;  // no setter in 8.1
    start_parser(parser, settings, HTTP_REQUEST, {.on_url = Owner::on_url}, &o);
    CHECK(parser.lenient_flags == 0);
    const std::string req = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n";
    CHECK(llhttp_execute(&parser, req.data(), req.size()) == HPE_UNEXPECTED_CONTENT_LENGTH);
}
