#include <doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "http/challenge.hpp"

using namespace sniroute::http;
namespace fs = std::filesystem;

TEST_CASE("challenge paths and tokens") {
    std::string token;
    CHECK(classify("/.well-known/acme-challenge/abc-DEF_123", token) == PathKind::Challenge);
    CHECK(token == "abc-DEF_123");
    CHECK(classify("/", token) == PathKind::Other);
    CHECK(classify("/.well-known/acme-challengex", token) == PathKind::Other);
    CHECK(classify("/.well-known/acme-challenge/" + std::string(256, 'a'), token) == PathKind::Challenge);
    const std::string bad[] = {
        "/.well-known/acme-challenge/",       "/.well-known/acme-challenge/" + std::string(257, 'a'),
        "/.well-known/acme-challenge/..",     "/.well-known/acme-challenge/../../etc/passwd",
        "/.well-known/acme-challenge/%2e%2e", "/.well-known/acme-challenge/a/b",
        "/.well-known/acme-challenge/a=",     "/.well-known/acme-challenge/a.b",
        "/.well-known/acme-challenge/a b",
    };
    for (const auto& p : bad) {
        CAPTURE(p);
        CHECK(classify(p, token) == PathKind::BadToken);
    }
}

TEST_CASE("target_path strips the query and absolute-form") {
    CHECK(target_path("/a/b?c=d") == "/a/b");
    CHECK(target_path("/a") == "/a");
    CHECK(target_path("http://host:80/x/y?z") == "/x/y");
    CHECK(target_path("http://host") == "/");
    CHECK(target_path("*") == "*");
    // A query or fragment straight after the authority belongs to no path, whatever it holds.
    CHECK(target_path("http://host?q=/.well-known/acme-challenge/abc") == "/");
    CHECK(target_path("http://host#/x") == "/");
}

TEST_CASE("after_authority: what follows scheme://authority in absolute-form") {
    CHECK(after_authority("http://host:80/x/y?z") == "/x/y?z");
    CHECK(after_authority("http://host?z/y") == "?z/y");
    CHECK(after_authority("http://host#f") == "#f");
    CHECK(after_authority("http://host") == "");
    CHECK(after_authority("http://") == "");
    // Not absolute-form: origin-form (even with "://" in its query), asterisk, authority-form.
    CHECK_FALSE(after_authority("/a?u=http://b/c").has_value());
    CHECK_FALSE(after_authority("*").has_value());
    CHECK_FALSE(after_authority("host:443").has_value());
}

struct TempWebroot {
    fs::path root;
    TempWebroot() {
        char tmpl[] = "/tmp/sniroute-webroot-XXXXXX";
        root = mkdtemp(tmpl);
        fs::create_directories(root / ".well-known" / "acme-challenge");
    }
    ~TempWebroot() { fs::remove_all(root); }
    fs::path dir() const { return root / ".well-known" / "acme-challenge"; }
    void write(const std::string& name, const std::string& body) const { std::ofstream(dir() / name) << body; }
};

TEST_CASE("webroot: regular files are served, trailing newline dropped") {
    TempWebroot w;
    w.write("tok", "tok.thumb\n");
    auto got = read_webroot_token(w.root.string(), "tok");
    REQUIRE(got);
    CHECK(*got == "tok.thumb");
    CHECK_FALSE(read_webroot_token(w.root.string(), "missing"));
    CHECK_FALSE(read_webroot_token((w.root / "nope").string(), "tok"));
}

TEST_CASE("webroot: symbolic links, directories, FIFOs and large files are refused") {
    TempWebroot w;
    std::ofstream(w.root / "outside") << "secret";
    fs::create_symlink(w.root / "outside", w.dir() / "link");
    CHECK_FALSE(read_webroot_token(w.root.string(), "link"));
    fs::create_directory(w.dir() / "adir");
    CHECK_FALSE(read_webroot_token(w.root.string(), "adir"));
    REQUIRE(mkfifo((w.dir() / "fifo").c_str(), 0600) == 0);
    CHECK_FALSE(read_webroot_token(w.root.string(), "fifo"));
    w.write("big", std::string(kMaxAnswerFile + 1, 'a'));
    CHECK_FALSE(read_webroot_token(w.root.string(), "big"));
    w.write("edge", std::string(kMaxAnswerFile, 'a'));
    CHECK(read_webroot_token(w.root.string(), "edge"));
}

TEST_CASE("webroot: a symlinked intermediate directory is not followed") {
    TempWebroot w;
    fs::path elsewhere = w.root / "elsewhere";
    fs::create_directories(elsewhere / "acme-challenge");
    std::ofstream(elsewhere / "acme-challenge" / "tok") << "leak";
    fs::remove_all(w.root / ".well-known");
    fs::create_directory_symlink(elsewhere, w.root / ".well-known");
    CHECK_FALSE(read_webroot_token(w.root.string(), "tok"));
}

TEST_CASE("answer sources are tried in order: store, webroot, thumbprint") {
    TempWebroot w;
    w.write("both", "both.fromfile");
    w.write("fileonly", "fileonly.fromfile");
    MemoryTokenStore store;
    store.put("both", "both.fromstore");
    Sources s{&store, w.root.string(), "THUMB"};
    auto a = find_answer(s, "both");
    REQUIRE(a);
    CHECK(a->body == "both.fromstore");
    CHECK(std::string(a->source) == "store");
    a = find_answer(s, "fileonly");
    REQUIRE(a);
    CHECK(a->body == "fileonly.fromfile");
    CHECK(std::string(a->source) == "webroot");
    a = find_answer(s, "other");
    REQUIRE(a);
    CHECK(a->body == "other.THUMB");
    CHECK(std::string(a->source) == "thumbprint");
    store.remove("both");
    CHECK(find_answer(s, "both")->body == "both.fromfile");
    Sources none{nullptr, "", ""};
    CHECK_FALSE(find_answer(none, "x"));
}
