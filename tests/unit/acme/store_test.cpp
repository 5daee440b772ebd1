// Crash-safe files: exact modes, whole-file replacement, .prev pairs, re-runs after a crash,
// and temp files left behind by a process killed in the middle of a write.
#include <doctest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "acme/store.hpp"
#include "acme_test_util.hpp"

using acme_test::TempDir;
using sniroute::acme::ensure_dir;
using sniroute::acme::install_pair;
using sniroute::acme::read_file;
using sniroute::acme::remove_stale_temps;
using sniroute::acme::write_file_atomic;

namespace {

mode_t mode_of(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

void put(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::string contents(const std::string& path) { return read_file(path, 1 << 20).value_or("<missing>"); }

// Names in dir other than the ones listed.
std::vector<std::string> others(const std::string& dir, const std::vector<std::string>& known) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        std::string name = e.path().filename().string();
        if (std::find(known.begin(), known.end(), name) == known.end()) out.push_back(name);
    }
    return out;
}

// Sets the umask for one scope.
struct Umask {
    mode_t old;
    explicit Umask(mode_t m) : old(::umask(m)) {}
    ~Umask() { ::umask(old); }
};

}  // namespace

TEST_CASE("write_file_atomic: creates and replaces with exactly the given mode") {
    TempDir dir;
    std::string path = dir / "account.key", err;
    {
        Umask u(0);  // a permissive umask must not widen 0600
        REQUIRE(write_file_atomic(path, "first", 0600, err));
    }
    CHECK(contents(path) == "first");
    CHECK(mode_of(path) == 0600);
    {
        Umask u(077);  // a strict umask must not narrow 0644
        REQUIRE(write_file_atomic(path, "second, longer than the first", 0644, err));
    }
    CHECK(contents(path) == "second, longer than the first");
    CHECK(mode_of(path) == 0644);
    REQUIRE(write_file_atomic(path, "", 0600, err));
    CHECK(contents(path) == "");
    CHECK(mode_of(path) == 0600);
    CHECK(others(dir.path(), {"account.key"}).empty());  // no temp file left behind
}

TEST_CASE("write_file_atomic: a relative path in the current directory") {
    TempDir dir;
    std::string cwd = std::filesystem::current_path().string(), err;
    REQUIRE(::chdir(dir.path().c_str()) == 0);
    bool ok = write_file_atomic("state.json", "{}", 0600, err);
    REQUIRE(::chdir(cwd.c_str()) == 0);
    CHECK(ok);
    CHECK(contents(dir / "state.json") == "{}");
}

TEST_CASE("write_file_atomic: failures say where, and leave nothing behind") {
    TempDir dir;
    std::string err;
    CHECK_FALSE(write_file_atomic(dir / "missing/state.json", "x", 0600, err));
    CHECK(err.find("missing") != std::string::npos);

    // The target is a directory: the rename fails after the temp file was written.
    REQUIRE(::mkdir((dir / "taken").c_str(), 0700) == 0);
    err.clear();
    CHECK_FALSE(write_file_atomic(dir / "taken", "x", 0600, err));
    CHECK(err.find("rename") != std::string::npos);
    CHECK(others(dir.path(), {"taken"}).empty());
    CHECK_FALSE(write_file_atomic(dir.path() + "/", "x", 0600, err));
}

TEST_CASE("write_file_atomic: a process killed mid-write leaves the old file and a temp that does no harm") {
    TempDir dir;
    std::string path = dir / "cert.pem", err;
    REQUIRE(write_file_atomic(path, "old content", 0644, err));

    // The child may write at most 4 KiB to any file; the kernel kills it (SIGXFSZ) part-way
    // through a 1 MiB write, which is as close to a crash mid-write as a test can get.
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core {
            0, 0
        }, small{4096, 4096};
        ::setrlimit(RLIMIT_CORE, &no_core);
        ::setrlimit(RLIMIT_FSIZE, &small);
        ::signal(SIGXFSZ, SIG_DFL);
        std::string child_err;
        write_file_atomic(path, std::string(1 << 20, 'x'), 0644, child_err);
        ::_exit(0);  // not reached if the limit did its job
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGXFSZ);

    CHECK(contents(path) == "old content");
    std::vector<std::string> left = others(dir.path(), {"cert.pem"});
    REQUIRE(left.size() == 1);
    CHECK(left[0].rfind(".cert.pem.", 0) == 0);

    REQUIRE(write_file_atomic(path, "new content", 0644, err));
    CHECK(contents(path) == "new content");

    // Too young to be called stale, then removed; a file of another shape is never touched.
    put(dir / ".cert.pem.notes.tmp", "mine");
    CHECK(remove_stale_temps(path, 3600) == 0);
    CHECK(remove_stale_temps(path, 0) == 1);
    CHECK(others(dir.path(), {"cert.pem"}) == std::vector<std::string>{".cert.pem.notes.tmp"});
}

TEST_CASE("write_file_atomic: a leftover temp file, even an unreadable one, does not block the next write") {
    TempDir dir;
    std::string path = dir / "state.json", err;
    put(dir / ".state.json.0123456789abcdef.tmp", "{\"half\":");
    ::chmod((dir / ".state.json.0123456789abcdef.tmp").c_str(), 0);
    put(dir / ".state.json.prev.fedcba9876543210.tmp", "x");
    for (int i = 0; i < 20; ++i) REQUIRE(write_file_atomic(path, "{\"n\":" + std::to_string(i) + "}", 0600, err));
    CHECK(contents(path) == "{\"n\":19}");
    CHECK(remove_stale_temps(path, 0) == 2);
    CHECK(others(dir.path(), {"state.json"}).empty());
}

TEST_CASE("install_pair: first install, then .prev keeps the pair each install replaces") {
    TempDir dir;
    std::string cert = dir / "mail.crt", key = dir / "mail.key", err;
    REQUIRE(install_pair(cert, key, "C1", "K1", err));
    CHECK(contents(cert) == "C1");
    CHECK(contents(key) == "K1");
    CHECK(mode_of(cert) == 0644);
    CHECK(mode_of(key) == 0600);
    CHECK_FALSE(std::filesystem::exists(cert + ".prev"));
    CHECK_FALSE(std::filesystem::exists(key + ".prev"));

    REQUIRE(install_pair(cert, key, "C2", "K2", err));
    CHECK(contents(cert) == "C2");
    CHECK(contents(key) == "K2");
    CHECK(contents(cert + ".prev") == "C1");
    CHECK(contents(key + ".prev") == "K1");

    REQUIRE(install_pair(cert, key, "C3", "K3", err));
    CHECK(contents(cert + ".prev") == "C2");
    CHECK(contents(key + ".prev") == "K2");
    CHECK(mode_of(key + ".prev") == 0600);

    // Installing the pair that is already live changes nothing, .prev included.
    REQUIRE(install_pair(cert, key, "C3", "K3", err));
    CHECK(contents(cert + ".prev") == "C2");
    CHECK(contents(key + ".prev") == "K2");
    CHECK(others(dir.path(), {"mail.crt", "mail.key", "mail.crt.prev", "mail.key.prev"}).empty());
}

TEST_CASE("install_pair: re-run after a crash between the key and the certificate") {
    TempDir dir;
    std::string cert = dir / "mail.crt", key = dir / "mail.key", err;
    REQUIRE(install_pair(cert, key, "C1", "K1", err));
    // The state install_pair(C2, K2) leaves when it dies after step 3 (see store.cpp).
    REQUIRE(write_file_atomic(cert + ".prev", "C1", 0644, err));
    REQUIRE(write_file_atomic(key + ".prev", "K1", 0600, err));
    REQUIRE(write_file_atomic(key, "K2", 0600, err));

    REQUIRE(install_pair(cert, key, "C2", "K2", err));
    CHECK(contents(cert) == "C2");
    CHECK(contents(key) == "K2");
    CHECK(contents(cert + ".prev") == "C1");
    CHECK(contents(key + ".prev") == "K1");  // not overwritten with K2
}

TEST_CASE("install_pair: re-run after a crash that left .prev as links to the live files") {
    TempDir dir;
    std::string cert = dir / "mail.crt", key = dir / "mail.key", err;
    REQUIRE(install_pair(cert, key, "C1", "K1", err));
    // Steps 1 and 2 of install_pair(C2, K2) done with hard links, then the crash.
    std::filesystem::remove(cert + ".prev");
    std::filesystem::remove(key + ".prev");
    REQUIRE(::link(cert.c_str(), (cert + ".prev").c_str()) == 0);
    REQUIRE(::link(key.c_str(), (key + ".prev").c_str()) == 0);

    REQUIRE(install_pair(cert, key, "C2", "K2", err));
    CHECK(contents(cert) == "C2");
    CHECK(contents(key) == "K2");
    CHECK(contents(cert + ".prev") == "C1");
    CHECK(contents(key + ".prev") == "K1");
    // rename(2) of one link onto another of the same inode is a no-op: no temp may stay behind.
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"mail.crt", "mail.crt.prev", "mail.key", "mail.key.prev"});
}

TEST_CASE("install_pair: keeps the operator's modes, but never leaves a key open to others") {
    TempDir dir;
    std::string cert = dir / "mail.crt", key = dir / "mail.key", err;
    REQUIRE(install_pair(cert, key, "C1", "K1", err));
    REQUIRE(::chmod(cert.c_str(), 0640) == 0);
    REQUIRE(::chmod(key.c_str(), 0644) == 0);
    REQUIRE(install_pair(cert, key, "C2", "K2", err));
    CHECK(mode_of(cert) == 0640);
    CHECK(mode_of(key) == 0640);
    CHECK(mode_of(cert + ".prev") == 0640);  // the old file itself, kept as it was
}

TEST_CASE("install_pair: missing old files and bad arguments") {
    TempDir dir;
    std::string cert = dir / "a.crt", key = dir / "a.key", err;
    // An old .prev from a generation whose live file has since vanished must not be paired.
    put(key + ".prev", "K0");
    put(cert, "C1");
    REQUIRE(install_pair(cert, key, "C2", "K2", err));
    CHECK(contents(cert + ".prev") == "C1");
    CHECK_FALSE(std::filesystem::exists(key + ".prev"));

    CHECK_FALSE(install_pair(cert, cert, "C", "K", err));
    CHECK_FALSE(install_pair(dir / "no/such.crt", dir / "no/such.key", "C", "K", err));
    CHECK_FALSE(err.empty());
}

TEST_CASE("read_file: size limit, missing files, directories and FIFOs") {
    TempDir dir;
    put(dir / "ten", "0123456789");
    CHECK(read_file(dir / "ten", 10) == "0123456789");
    CHECK_FALSE(read_file(dir / "ten", 9).has_value());
    put(dir / "empty", "");
    CHECK(read_file(dir / "empty", 0) == "");
    CHECK_FALSE(read_file(dir / "missing", 100).has_value());
    CHECK_FALSE(read_file(dir.path(), 100).has_value());
    REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
    CHECK_FALSE(read_file(dir / "fifo", 100).has_value());  // returns at once instead of waiting for a writer
}

TEST_CASE("ensure_dir: mkdir -p") {
    TempDir dir;
    std::string err;
    Umask u(0);
    REQUIRE(ensure_dir(dir / "a/b//c/", 0750, err));
    CHECK(std::filesystem::is_directory(dir / "a/b/c"));
    CHECK(mode_of(dir / "a/b") == 0750);
    REQUIRE(::chmod((dir / "a").c_str(), 0700) == 0);
    REQUIRE(ensure_dir(dir / "a/b/c", 0755, err));  // exists: left alone
    CHECK(mode_of(dir / "a") == 0700);
    put(dir / "file", "x");
    CHECK_FALSE(ensure_dir(dir / "file/sub", 0700, err));
    CHECK(err.find("file") != std::string::npos);
    CHECK_FALSE(ensure_dir("", 0700, err));
}
