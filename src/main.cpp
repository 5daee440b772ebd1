// Wiring only: parse the command line, load the config, hand over to the server.
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "acme/cli.hpp"
#include "config/config.hpp"
#include "core/log.hpp"
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

// What each command's --help prints.
constexpr const char* kValidateHelp =
    "usage: sniroute validate --config FILE\n\n"
    "Checks FILE. Prints 'ok' and exits 0, or prints one FILE:LINE:COL: message line per\n"
    "problem on stderr and exits 1. Warnings (FILE:LINE:COL: warning: message, on stderr)\n"
    "point at what is probably a mistake; they do not change the exit code.";
constexpr const char* kRunHelp =
    "usage: sniroute run --config FILE [--pidfile FILE]\n\n"
    "Runs the proxy in the foreground, logging to stderr. A 'ready' line is logged once\n"
    "every listener is bound.\n"
    "  SIGHUP           reload FILE; a config that fails validation is logged and ignored\n"
    "  SIGTERM, SIGINT  stop accepting, drain established connections, exit 0";
constexpr const char* kCertsHelp =
    "usage: sniroute certs SUBCOMMAND --config FILE\n\n"
    "  list              each [[certificates]] entry: domains, expiry, last error, next renewal\n"
    "  renew NAME        ask the running instance to renew NAME now and wait for the result\n"
    "  check [--days N]  connect to every port that routes a certificate's names and compare\n"
    "                    what it serves with the file; exit 1 if any is stale or expires\n"
    "                    within N days (default 14)";

// The exit code when a command ends before it starts: 0 after printing `help` for --help, 2
// after printing "sniroute COMMAND: problem" when a word it does not take or --config is
// missing. nullopt when the command can go on.
std::optional<int> stop_early(const char* command, const Args& a, const char* help, bool takes_words) {
    if (a.help) {
        std::puts(help);
        return 0;
    }
    if (!takes_words && !a.words.empty()) {
        std::fprintf(stderr, "sniroute %s: unexpected argument %s\n", command, a.words.front().c_str());
        return 2;
    }
    if (a.config.empty()) {
        std::fprintf(stderr, "sniroute %s: --config FILE is required\n", command);
        return 2;
    }
    return std::nullopt;
}

// How the loader's warnings reach the user: validate (and certs) print them like errors, as
// FILE:LINE:COL: warning: message; run logs each as a config_warning line, as a reload does.
enum class Warnings { Print, Log };

// Loads the config file, or prints each problem as FILE:LINE:COL: message on stderr. The
// checks are the loader's, so validate, run and a reload all refuse and warn about the same.
std::optional<sniroute::config::Config> load_config(const std::string& path, Warnings warnings = Warnings::Print) {
    auto res = sniroute::config::load_file(path);
    for (auto& d : res.diagnostics) std::fprintf(stderr, "%s\n", d.to_string().c_str());
    if (warnings == Warnings::Log && res.config) {
        sniroute::core::set_log_format(res.config->global.log_format);
        for (auto& d : res.warnings) sniroute::core::log_warn("config_warning").kv("at", d.to_string());
    } else {
        for (auto& d : res.warnings) std::fprintf(stderr, "%s\n", d.to_string("warning").c_str());
    }
    return std::move(res.config);
}

int cmd_validate(int argc, char** argv) {
    Args a = parse_args(argc, argv, 2, false);
    if (auto code = stop_early("validate", a, kValidateHelp, false)) return *code;
    if (!load_config(a.config)) return 1;
    std::puts("ok");
    return 0;
}

int cmd_run(int argc, char** argv) {
    Args a = parse_args(argc, argv, 2, true);
    if (auto code = stop_early("run", a, kRunHelp, false)) return *code;
    auto cfg = load_config(a.config, Warnings::Log);
    if (!cfg) return 1;
    return sniroute::server::run_server(std::move(*cfg), a.pidfile);
}

int cmd_certs(int argc, char** argv) {
    std::string sub = argc > 2 ? argv[2] : "";
    if (sub.empty()) {
        std::puts(kCertsHelp);
        return 2;
    }
    Args a = parse_args(argc, argv, 3, false);
    a.help = a.help || sub == "--help" || sub == "-h";
    if (auto code = stop_early("certs", a, kCertsHelp, true)) return *code;
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
