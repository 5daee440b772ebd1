// Files that must survive a crash or power loss at any instant: account key, ACME state,
// and the certificate/key pairs the mail servers read.
//
// The one primitive is write-to-temp, fsync, rename, fsync-directory: rename(2) replaces the
// name atomically, so a reader sees the old bytes or the new bytes, never a torn file, and
// the two fsyncs make the new bytes and the new name durable before we report success.
// Temporary files are named ".<name>.<16 hex digits>.tmp" beside their target.
//
// A symlink at a target path is replaced by a regular file, not followed.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sniroute::acme {

// Replaces path with data. The temp file is created with O_EXCL and given exactly mode (the
// umask does not apply), so the content is never readable more widely than intended. On false,
// err says which step failed; if only the final directory fsync failed the new content is
// already visible but may not survive a power loss.
bool write_file_atomic(const std::string& path, std::string_view data, mode_t mode, std::string& err);

// Installs a new certificate chain and its private key for a mail server, keeping the pair
// they replace beside them as "<cert_path>.prev" and "<key_path>.prev". The replaced files'
// mode and owner are kept (the key never becomes group-writable or world-accessible); new files
// get 0644 for the certificate and 0600 for the key. The comment in store.cpp explains the
// order of steps and what a reader can see between them. Calling it again with the same pair
// after a crash finishes the job without disturbing the .prev pair.
bool install_pair(const std::string& cert_path, const std::string& key_path, std::string_view cert_pem,
                  std::string_view key_pem, std::string& err);

// The whole content of a regular file, or nullopt if it is missing, unreadable, not a regular
// file (a FIFO would block us) or longer than max_bytes.
std::optional<std::string> read_file(const std::string& path, size_t max_bytes);

// mkdir -p: creates path and any missing parents with mode (subject to the umask, as mkdir is);
// existing directories are left as they are. False if a component exists and is not a directory.
bool ensure_dir(const std::string& path, mode_t mode, std::string& err);

// Removes temporary files that a crash left beside path (see the naming above), if they are
// at least min_age_seconds old, so a writer still busy with one is left alone. Returns how many
// were removed. Leftovers never block a later write; this only reclaims the space.
size_t remove_stale_temps(const std::string& path, int64_t min_age_seconds);

}  // namespace sniroute::acme
