// The Manager on a real loop against a CA that cannot be reached: a renewal fails and backs
// off, `renew NAME` over the control socket gets its one-line answer, and stop() ends
// everything, idle control connections included, so that uv_loop_close() succeeds.
#include <doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "acme/manager.hpp"
#include "acme/store.hpp"
#include "acme_loop_util.hpp"
#include "acme_test_util.hpp"
#include "acme_tls_util.hpp"

using sniroute::acme::Manager;

namespace {

sniroute::route::SnapshotPtr snapshot(const std::string& storage, uint16_t ca_port = 0) {
    sniroute::config::Config cfg;
    cfg.acme.storage = storage;
    cfg.acme.directory = "https://127.0.0.1:" + std::to_string(ca_port ? ca_port : acme_test::dead_port()) + "/dir";
    sniroute::config::Certificate c;
    c.name = "mail";
    c.domains = {"mail.example.com"};
    c.cert_file = storage + "/mail.crt";
    c.key_file = storage + "/mail.key";
    cfg.certificates.push_back(c);
    return std::make_shared<const sniroute::route::Snapshot>(std::move(cfg));
}

}  // namespace

TEST_SUITE("acme.manager") {

TEST_CASE("Manager: a failed renewal is answered over the control socket, and stop() leaves no handle") {
    acme_test::TempDir dir;
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    sniroute::http::MemoryTokenStore tokens;
    auto m = std::make_unique<Manager>(&loop, snapshot(dir.path()), tokens);
    m->start();
    const std::string sock = dir / "control.sock";

    // Clients run in a thread with blocking sockets while the loop runs here.
    std::atomic<bool> answered{false};
    std::string renew_answer, unknown_answer, bad_answer, idle_answer;
    std::thread clients([&] {
        int idle = acme_test::connect_unix(sock);  // says nothing; stop() must close it
        int fd = acme_test::connect_unix(sock);
        if (fd >= 0) {
            (void)!::write(fd, "renew nosuch\n", 13);
            unknown_answer = acme_test::read_all(fd);
            ::close(fd);
        }
        fd = acme_test::connect_unix(sock);
        if (fd >= 0) {
            (void)!::write(fd, "status\n", 7);
            bad_answer = acme_test::read_all(fd);
            ::close(fd);
        }
        fd = acme_test::connect_unix(sock);
        if (fd >= 0) {
            (void)!::write(fd, "renew mail\n", 11);
            renew_answer = acme_test::read_all(fd);
            ::close(fd);
        }
        answered = true;
        if (idle >= 0) {
            idle_answer = acme_test::read_all(idle);  // EOF once the manager has stopped
            ::close(idle);
        }
    });

    bool stopped = false;
    acme_test::poll_on_loop(&loop, [&] {
        if (!answered) return false;
        m->stop([&] { stopped = true; });
        return true;
    });
    uv_run(&loop, UV_RUN_DEFAULT);
    clients.join();

    CHECK(stopped);
    CHECK(uv_loop_close(&loop) == 0);
    m.reset();

    CHECK(unknown_answer == "error unknown certificate nosuch\n");
    CHECK(bad_answer == "error unknown command\n");
    CHECK(renew_answer.starts_with("error "));
    CHECK(renew_answer.find("connect to 127.0.0.1") != std::string::npos);
    CHECK(idle_answer == "");

    // The failure was recorded with a back-off, and the account key was created 0600.
    auto state = sniroute::acme::read_file(dir / "certs/mail/state.json", 1 << 20);
    REQUIRE(state.has_value());
    auto j = nlohmann::json::parse(*state);
    CHECK(j["failures"].get<int>() >= 1);
    CHECK(j["next_attempt"].get<int64_t>() > 0);
    CHECK(j["last_error"].get<std::string>().find("connect to 127.0.0.1") != std::string::npos);
    struct stat st {};
    REQUIRE(::stat((dir / "account.key").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("Manager: stop() right after start() and stop() of a manager that never started") {
    acme_test::TempDir dir;
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    sniroute::http::MemoryTokenStore tokens;
    bool stopped = false;
    {
        Manager m(&loop, snapshot(dir.path()), tokens);
        m.start();
        m.stop([&] { stopped = true; });
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK(stopped);
    }
    stopped = false;
    {
        Manager m(&loop, snapshot(dir.path()), tokens);
        m.stop([&] { stopped = true; });
        CHECK(stopped);  // nothing open: done at once
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    CHECK(uv_loop_close(&loop) == 0);
}

// A renewal asked for over the control socket is still running when sniroute stops (SIGTERM):
// its client gets an answer, as queued requests do, not a bare EOF; and the socket file goes
// away with the listener, so `certs renew` afterwards does not find a dead socket.
TEST_CASE("Manager: stop() during a requested renewal answers it and removes the control socket") {
    acme_test::TempDir dir;
    // A CA that never answers: the kernel completes TCP, nobody speaks TLS.
    int ca = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(ca, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(::listen(ca, 8) == 0);
    socklen_t len = sizeof sa;
    ::getsockname(ca, reinterpret_cast<sockaddr*>(&sa), &len);
    // A back-off in force: the manager sleeps until the request below wakes it.
    std::string err;
    REQUIRE(sniroute::acme::ensure_dir(dir / "certs/mail", 0700, err));
    nlohmann::json st = {{"failures", 1}, {"next_attempt", static_cast<int64_t>(std::time(nullptr)) + 3600}};
    REQUIRE(sniroute::acme::write_file_atomic(dir / "certs/mail/state.json", st.dump(), 0600, err));

    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    sniroute::http::MemoryTokenStore tokens;
    auto m = std::make_unique<Manager>(&loop, snapshot(dir.path(), ntohs(sa.sin_port)), tokens);
    m->start();
    const std::string sock = dir / "control.sock";

    std::atomic<bool> sent{false};
    std::string answer;
    std::thread client([&] {
        int fd = acme_test::connect_unix(sock);
        if (fd >= 0) {
            (void)!::write(fd, "renew mail\n", 11);
            sent = true;
            answer = acme_test::read_all(fd);
            ::close(fd);
        }
        sent = true;
    });
    bool stopped = false;
    int ticks = 0;
    acme_test::poll_on_loop(&loop, [&] {
        // Half a second after the request: the renewal is waiting for the CA by then.
        if (!sent || ++ticks < 50) return false;
        m->stop([&] { stopped = true; });
        return true;
    });
    uv_run(&loop, UV_RUN_DEFAULT);
    client.join();
    ::close(ca);

    CHECK(stopped);
    CHECK(uv_loop_close(&loop) == 0);
    m.reset();
    CHECK(answer == "error sniroute is shutting down\n");
    struct stat sb {};
    CHECK(::stat(sock.c_str(), &sb) != 0);
}

// A certificate is issued and installed, and sniroute stops (SIGTERM, or a crash) before its
// deploy commands have run. The certificate on disk is new, so it is not due again for weeks;
// unless the interrupted deploy is resumed, the mail servers keep the old one (the Mailu case).
TEST_CASE("Manager: a deploy interrupted by stop() runs after the restart") {
    acme_test::TempDir dir;
    std::string err;
    REQUIRE(sniroute::acme::ensure_dir(dir / "certs/mail", 0700, err));
    // An issued pair waiting to be installed, as renew() leaves it after the download.
    sniroute::acme::Key key = sniroute::acme::Key::generate(sniroute::acme::KeyType::EcdsaP256);
    acme_test::CertFields f;
    f.cn = "mail.example.com";
    f.dns = {"mail.example.com"};
    f.not_before = static_cast<int64_t>(std::time(nullptr)) - 3600;
    const std::string chain = acme_test::make_cert(key, f);
    REQUIRE(sniroute::acme::write_file_atomic(dir / "certs/mail/pending.key", key.private_pem(), 0600, err));
    REQUIRE(sniroute::acme::write_file_atomic(dir / "certs/mail/pending.crt", chain, 0644, err));

    auto config = [&](const std::string& deploy) {
        sniroute::config::Config cfg = snapshot(dir.path())->config();
        cfg.certificates[0].deploy = {deploy};
        return std::make_shared<const sniroute::route::Snapshot>(std::move(cfg));
    };
    auto exists = [](const std::string& path) {
        struct stat sb {};
        return ::stat(path.c_str(), &sb) == 0;
    };
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    sniroute::http::MemoryTokenStore tokens;

    // Runs a manager whose deploy command is `deploy` until `done()` (5 s at most).
    auto run_until = [&](const std::string& deploy, const std::function<bool()>& done) {
        Manager m(&loop, config(deploy), tokens);
        m.start();
        bool stopped = false;
        int ticks = 0;
        acme_test::poll_on_loop(&loop, [&] {
            if (!done() && ++ticks < 500) return false;
            m.stop([&] { stopped = true; });
            return true;
        });
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK(stopped);
    };

    // First run: the pair is installed, and the deploy command is still running at stop().
    run_until("touch " + (dir / "started") + "; exec sleep 30", [&] { return exists(dir / "started"); });
    REQUIRE(exists(dir / "started"));
    CHECK(sniroute::acme::read_file(dir / "mail.crt", 1 << 20) == chain);
    CHECK(exists(dir / "certs/mail/pending.crt"));  // kept: the deploy has not finished
    CHECK(exists(dir / "certs/mail/pending.key"));

    // Second run: the deploy is done now, and only then is the pending pair let go. The command
    // touches its marker before it exits, and the manager lets the pair go only once it has
    // seen the exit: so the run waits for both, or a stop() in between keeps the pair.
    run_until("touch " + (dir / "deployed"),
              [&] { return exists(dir / "deployed") && !exists(dir / "certs/mail/pending.crt"); });
    CHECK(uv_loop_close(&loop) == 0);
    CHECK(exists(dir / "deployed"));
    CHECK(sniroute::acme::read_file(dir / "mail.crt", 1 << 20) == chain);
    CHECK_FALSE(exists(dir / "certs/mail/pending.crt"));
    CHECK_FALSE(exists(dir / "certs/mail/pending.key"));
    // The key kept for rollback is not the new one: the second install changed nothing.
    CHECK_FALSE(exists(dir / "mail.key.prev"));
}

}  // TEST_SUITE("acme.manager")
