#include <doctest.h>

#include <fstream>
#include <iterator>
#include <vector>

#include "tls/client_hello.hpp"

using namespace sniroute::tls;

static std::vector<uint8_t> fixture(const char* name) {
    std::ifstream in(std::string(SNIROUTE_FIXTURES_DIR) + "/" + name, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), "missing fixture ", name);
    return {std::istreambuf_iterator<char>(in), {}};
}

TEST_CASE("openssl3-mail whole") {
    auto b = fixture("openssl3-mail.bin");
    ClientHelloParser p;
    CHECK(p.feed(b.data(), b.size()) == ParseStatus::Done);
    CHECK(p.info().sni == "mail.example.com");
}
