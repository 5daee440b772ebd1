// Wiring only: parse the command line, load the config, hand over to the server.
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "acme/cli.hpp"
#include "config/config.hpp"
#include "server/control.hpp"

namespace {

constexpr const char* kVersion = "0.1.0";

void usage(FILE* out) {
    std::fputs(
        "usage: sniroute COMMAND [options]\n"
        "\n"
        "commands:\n"
        "  run --config FILE [--pidfile FILE]   start the proxy in the foreground\n"
        "  validate --config FILE               check a config; prints ok or FILE:LINE:COL errors\n"
        "  certs list|renew NAME|check --config FILE\n"
        "                                       certificates of the built-in ACME client\n"
        "  version                              print the version\n"
        "\n"
        "'sniroute COMMAND --help' describes one command.\n",
        out);
}

struct Args {
    std::string config;
    std::string pidfile;
    bool help = false;
    std::vector<std::string> words;  // every other argument, in order
};

Args parse_args(int argc, char** argv, int from, bool allow_pidfile) {
    Args a;
    for (int i = from; i < argc; ++i) {
        std::string k = argv[i];
        if (k == "--help" || k == "-h")
            a.help = true;
        else if ((k == "--config" || k == "-c") && i + 1 < argc)
            a.config = argv[++i];
        else if (k.starts_with("--config="))
            a.config = k.substr(9);
        else if (allow_pidfile && k == "--pidfile" && i + 1 < argc)
            a.pidfile = argv[++i];
        else if (allow_pidfile && k.starts_with("--pidfile="))
            a.pidfile = k.substr(10);
        else
            a.words.push_back(k);
    }
    return a;
}

// Says what keeps the arguments from working (a word the command does not take, or no
// --config) as "sniroute COMMAND: problem" on stderr. False when there is such a problem.
bool usable(const char* command, const Args& a, bool takes_words) {
    if (!takes_words && !a.words.empty()) {
        std::fprintf(stderr, "sniroute %s: unexpected argument %s\n", command, a.words.front().c_str());
        return false;
    }
    if (a.config.empty()) {
        std::fprintf(stderr, "sniroute %s: --config FILE is required\n", command);
        return false;
    }
    return true;
}

// Loads the config file, or prints each problem as FILE:LINE:COL: message on stderr.
std::optional<sniroute::config::Config> load_config(const std::string& path) {
    auto res = sniroute::config::load_file(path);
    for (auto& d : res.diagnostics) std::fprintf(stderr, "%s\n", d.to_string().c_str());
    return std::move(res.config);
}

int cmd_validate(int argc, char** argv) {
    Args a = parse_args(argc, argv, 2, false);
    if (a.help) {
        std::puts(
            "usage: sniroute validate --config FILE\n\n"
            "Checks FILE. Prints 'ok' and exits 0, or prints one FILE:LINE:COL: message line per\n"
            "problem on stderr and exits 1.");
        return 0;
    }
    if (!usable("validate", a, false)) return 2;
    if (!load_config(a.config)) return 1;
    std::puts("ok");
    return 0;
}

int cmd_run(int argc, char** argv) {
    Args a = parse_args(argc, argv, 2, true);
    if (a.help) {
        std::puts(
            "usage: sniroute run --config FILE [--pidfile FILE]\n\n"
            "Runs the proxy in the foreground, logging to stderr. A 'ready' line is logged once\n"
            "every listener is bound.\n"
            "  SIGHUP           reload FILE; a config that fails validation is logged and ignored\n"
            "  SIGTERM, SIGINT  stop accepting, drain established connections, exit 0");
        return 0;
    }
    if (!usable("run", a, false)) return 2;
    auto cfg = load_config(a.config);
    if (!cfg) return 1;
    return sniroute::server::run_server(std::move(*cfg), a.pidfile);
}

int cmd_certs(int argc, char** argv) {
    std::string sub = argc > 2 ? argv[2] : "";
    Args a = parse_args(argc, argv, 3, false);
    if (a.help || sub.empty() || sub == "--help" || sub == "-h") {
        std::puts(
            "usage: sniroute certs SUBCOMMAND --config FILE\n\n"
            "  list              each [[certificates]] entry: domains, expiry, last error, next renewal\n"
            "  renew NAME        ask the running instance to renew NAME now and wait for the result\n"
            "  check [--days N]  connect to every port that routes a certificate's names and compare\n"
            "                    what it serves with the file; exit 1 if any is stale or expires\n"
            "                    within N days (default 14)");
        return sub.empty() ? 2 : 0;
    }
    if (!usable("certs", a, true)) return 2;
    auto cfg = load_config(a.config);
    if (!cfg) return 1;
    return sniroute::acme::certs_command(sub, a.words, *cfg);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    std::string cmd = argv[1];
    try {
        if (cmd == "run") return cmd_run(argc, argv);
        if (cmd == "validate") return cmd_validate(argc, argv);
        if (cmd == "certs") return cmd_certs(argc, argv);
        if (cmd == "version" || cmd == "--version") {
            std::printf("sniroute %s\n", kVersion);
            return 0;
        }
        if (cmd == "--help" || cmd == "-h" || cmd == "help") {
            usage(stdout);
            return 0;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sniroute: %s\n", e.what());
        return 1;
    }
    std::fprintf(stderr, "sniroute: unknown command '%s'\n\n", cmd.c_str());
    usage(stderr);
    return 2;
}
