// Small helpers shared by the proxy layer's unit tests.
#pragma once

#include <doctest.h>

#include "core/address.hpp"

namespace sniroute::proxy::test {

// A socket address from its text; the test fails if it does not parse.
inline core::SocketAddress addr(const char* s) {
    auto a = core::SocketAddress::parse(s);
    REQUIRE(a);
    return *a;
}

}  // namespace sniroute::proxy::test
