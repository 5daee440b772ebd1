// `sniroute certs ...` subcommands.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace sniroute::acme {

// sub = list | renew | check; args are the remaining words (NAME for renew, --days N for
// check). Returns the process exit code.
int certs_command(const std::string& sub, const std::vector<std::string>& args, const config::Config& cfg);

}  // namespace sniroute::acme
