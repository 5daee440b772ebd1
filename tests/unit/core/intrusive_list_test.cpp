// IntrusiveList: the worker loop's list of live sessions, and core::Fd.
#include <doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <vector>

#include "core/fd.hpp"
#include "core/intrusive_list.hpp"

using sniroute::core::Fd;
using sniroute::core::IntrusiveList;

namespace {

struct Item : IntrusiveList<Item>::Hook {
    explicit Item(int v) : value(v) {}
    int value;
};

std::vector<int> values(IntrusiveList<Item>& l) {
    std::vector<int> out;
    l.for_each([&](Item* i) { out.push_back(i->value); });
    return out;
}

}  // namespace

TEST_SUITE("core.intrusive_list") {

TEST_CASE("push_front, remove from the head, the middle and the tail") {
    IntrusiveList<Item> l;
    Item a(1), b(2), c(3), d(4);
    CHECK(l.empty());
    for (Item* i : {&a, &b, &c, &d}) l.push_front(i);
    CHECK(l.size() == 4);
    CHECK(values(l) == std::vector<int>{4, 3, 2, 1});
    l.remove(&c);  // middle
    CHECK(values(l) == std::vector<int>{4, 2, 1});
    l.remove(&d);  // head
    CHECK(values(l) == std::vector<int>{2, 1});
    l.remove(&a);  // tail
    CHECK(values(l) == std::vector<int>{2});
    l.remove(&b);
    CHECK(l.empty());
    CHECK(values(l).empty());
}

TEST_CASE("removing an element that is not linked changes nothing") {
    IntrusiveList<Item> l;
    Item a(1), b(2), stranger(9);
    l.push_front(&a);
    l.push_front(&b);
    l.remove(&stranger);
    l.remove(&a);
    l.remove(&a);  // twice
    CHECK(l.size() == 1);
    CHECK(values(l) == std::vector<int>{2});
    l.push_front(&a);  // and it can be linked again
    CHECK(values(l) == std::vector<int>{1, 2});
}

TEST_CASE("for_each lets the callback remove the element it is given") {
    IntrusiveList<Item> l;
    std::vector<Item> items;
    items.reserve(5);
    for (int i = 0; i < 5; ++i) items.emplace_back(i);
    for (auto& i : items) l.push_front(&i);
    int seen = 0;
    l.for_each([&](Item* i) {
        ++seen;
        l.remove(i);
    });
    CHECK(seen == 5);
    CHECK(l.empty());
}

}  // TEST_SUITE("core.intrusive_list")

TEST_SUITE("core.fd") {

TEST_CASE("Fd closes on scope exit, not after release, and reports close's result") {
    int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(raw >= 0);
    {
        Fd f(raw);
        CHECK(f.valid());
    }
    CHECK(::fcntl(raw, F_GETFD) == -1);  // closed by the destructor

    int kept = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(kept >= 0);
    {
        Fd f(kept);
        CHECK(f.release() == kept);
        CHECK_FALSE(f.valid());
    }
    CHECK(::fcntl(kept, F_GETFD) != -1);  // still open: released
    Fd moved_from(kept);
    Fd moved_to(std::move(moved_from));
    CHECK_FALSE(moved_from.valid());
    CHECK(moved_to.get() == kept);
    CHECK(moved_to.close() == 0);
    CHECK_FALSE(moved_to.valid());
    CHECK(::fcntl(kept, F_GETFD) == -1);
}

}  // TEST_SUITE("core.fd")
