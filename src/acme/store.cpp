#include "acme/store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <ctime>
#include <system_error>
#include <utility>

#include "core/fd.hpp"

namespace sniroute::acme {

namespace {

// A .prev copy is made of a certificate chain or key; nothing that size is legitimately huge.
constexpr size_t kMaxCopyBytes = 16u << 20;

constexpr mode_t kNewCertMode = 0644;
constexpr mode_t kNewKeyMode = 0600;

struct Owner {
    uid_t uid;
    gid_t gid;
};

bool fail(std::string& err, const char* what, const std::string& path, int e) {
    err = std::string(what) + " " + path + ": " + std::generic_category().message(e);
    return false;
}

std::string dir_of(const std::string& path) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

std::string base_of(const std::string& path) {
    size_t slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

constexpr size_t kRandomHexChars = 16;

// Random, not pid-based: two containers that are both pid 1 may share a storage volume, and a
// crashed process's leftover must never be mistaken for (or collide with) a live writer's file.
std::string random_hex() {
    static std::atomic<uint64_t> counter{0};
    uint64_t v = 0;
    if (::getrandom(&v, sizeof v, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof v)) {
        // No entropy yet (early boot): O_EXCL still catches a collision, so uniqueness within
        // this process is enough.
        v = (static_cast<uint64_t>(::getpid()) << 40) ^ static_cast<uint64_t>(::time(nullptr)) ^ (counter++ << 20);
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(kRandomHexChars, '0');
    for (size_t i = 0; i < kRandomHexChars; ++i, v >>= 4) out[i] = kHex[v & 15];
    return out;
}

std::string temp_path_for(const std::string& path) {
    std::string dir = dir_of(path);
    return (dir == "/" ? "" : dir) + "/." + base_of(path) + "." + random_hex() + ".tmp";
}

// Makes a rename in dir durable. Some filesystems cannot fsync a directory (EINVAL); they give
// no stronger promise we could ask for, so that is not an error.
bool fsync_dir(const std::string& dir, std::string& err) {
    core::Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) return fail(err, "open directory", dir, errno);
    if (::fsync(fd.get()) != 0 && errno != EINVAL) return fail(err, "fsync directory", dir, errno);
    return true;
}

bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

bool write_atomic(const std::string& path, std::string_view data, mode_t mode, std::optional<Owner> owner,
                  std::string& err) {
    if (base_of(path).empty()) return fail(err, "write", path, EISDIR);
    std::string tmp;
    int raw = -1;
    for (int attempt = 0; attempt < 8 && raw < 0; ++attempt) {
        tmp = temp_path_for(path);
        raw = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode & 07777);
        if (raw < 0 && errno != EEXIST) break;
    }
    if (raw < 0) return fail(err, "create", tmp, errno);
    core::Fd fd(raw);
    auto abandon = [&](const char* what, int e) {
        ::unlink(tmp.c_str());
        return fail(err, what, tmp, e);
    };
    // Owner first: chown clears set-id bits, and fchmod then sets the exact mode, umask or not.
    // A chown we are not allowed to do leaves the file ours, which is what a new file gets anyway.
    if (owner && ::fchown(fd.get(), owner->uid, owner->gid) != 0) {
        // Not fatal: only root may give a file away, and the mode below still applies.
    }
    if (::fchmod(fd.get(), mode & 07777) != 0) return abandon("chmod", errno);
    errno = 0;
    if (!write_all(fd.get(), data)) return abandon("write", errno ? errno : EIO);
    if (::fsync(fd.get()) != 0) return abandon("fsync", errno);
    if (fd.close() != 0) return abandon("close", errno);
    if (::rename(tmp.c_str(), path.c_str()) != 0) return abandon("rename onto", errno);
    return fsync_dir(dir_of(path), err);
}

// Makes "<path>.prev" hold what path holds now, atomically; removes a stale .prev if path is
// missing, so the two .prev files never pair a certificate with a key from another generation.
bool keep_previous(const std::string& path, std::string& err) {
    const std::string prev = path + ".prev";
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno != ENOENT) return fail(err, "stat", path, errno);
        if (::unlink(prev.c_str()) != 0 && errno != ENOENT) return fail(err, "unlink", prev, errno);
        return fsync_dir(dir_of(prev), err);
    }
    // Already kept: a crash after this step last time left .prev as a link to path's inode.
    // rename(2) between two links to one inode does nothing and would leave our temp behind.
    struct stat pst {};
    if (::lstat(prev.c_str(), &pst) == 0 && pst.st_dev == st.st_dev && pst.st_ino == st.st_ino) return true;
    // A hard link costs nothing and is safe because we never write a file in place: the next
    // step renames a new inode over path and the old one lives on under .prev.
    std::string tmp = temp_path_for(prev);
    if (::link(path.c_str(), tmp.c_str()) == 0) {
        if (::rename(tmp.c_str(), prev.c_str()) != 0) {
            int e = errno;
            ::unlink(tmp.c_str());
            return fail(err, "rename onto", prev, e);
        }
        return fsync_dir(dir_of(prev), err);
    }
    // Links can be refused: fs.protected_hardlinks for a file we do not own, or a filesystem
    // without them. A copy does the same job.
    std::optional<std::string> content = read_file(path, kMaxCopyBytes);
    if (!content) {
        err = "read " + path + ": cannot copy it to " + prev;
        return false;
    }
    return write_atomic(prev, *content, st.st_mode & 07777, Owner{st.st_uid, st.st_gid}, err);
}

bool has_content(const std::string& path, std::string_view data) {
    std::optional<std::string> now = read_file(path, data.size());
    return now && *now == data;
}

// Mode and owner for a file about to be replaced: the old file's, or the default for a new one.
std::pair<mode_t, std::optional<Owner>> attributes_for(const std::string& path, mode_t keep_mask, mode_t fresh) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return {fresh, std::nullopt};
    return {st.st_mode & keep_mask, Owner{st.st_uid, st.st_gid}};
}

bool is_hex(std::string_view s) {
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

}  // namespace

bool write_file_atomic(const std::string& path, std::string_view data, mode_t mode, std::string& err) {
    return write_atomic(path, data, mode, std::nullopt, err);
}

// Why key first, then certificate.
//
// Two renames can never be one atomic step, so for a moment the live names hold one old and
// one new file, and a crash can freeze that moment. The order decides which mix it is:
//
//   step                          cert_path  key_path  cert.prev  key.prev
//   start                         C1         K1        C0         K0
//   1. cert.prev <- cert_path     C1         K1        C1         K0
//   2. key.prev  <- key_path      C1         K1        C1         K1
//   3. key_path  <- new key       C1         K2        C1         K1
//   4. cert_path <- new cert      C2         K2        C1         K1
//
// Every certificate on disk has its key on disk at every row: C1 is matched by K1 at key_path
// or key.prev, and C2 appears only after K2 is in place. Certificate first would, after a crash
// between the two renames, leave C2 live with its key nowhere beside it (only in the ACME
// client's pending files), and cert.prev first is chosen over key.prev first for the same
// reason: the other order would briefly pair C0 in cert.prev with K1 and lose K0 for good.
//
// What a reader (a mail server reloading, a health check) may see: between steps 3 and 4 the
// live names are C1 with K2, which do not match; a reader that loads them then must fail and
// retry, and the deploy hook that tells mail servers to reload runs only after we return.
// A crash in that window is repaired by calling install_pair again with the same pair: files
// that already hold the new content are neither backed up nor rewritten, so key.prev keeps K1
// instead of being overwritten by K2.
bool install_pair(const std::string& cert_path, const std::string& key_path, std::string_view cert_pem,
                  std::string_view key_pem, std::string& err) {
    if (cert_path == key_path) return fail(err, "install", cert_path, EINVAL);
    bool cert_current = has_content(cert_path, cert_pem);
    bool key_current = has_content(key_path, key_pem);

    // Keep what the operator set up (group ssl-cert, 0640 and the like), but a private key is
    // never made executable, group-writable or accessible to others.
    auto [cert_mode, cert_owner] = attributes_for(cert_path, 0666, kNewCertMode);
    auto [key_mode, key_owner] = attributes_for(key_path, 0640, kNewKeyMode);

    if (!cert_current && !keep_previous(cert_path, err)) return false;
    if (!key_current && !keep_previous(key_path, err)) return false;
    if (!key_current && !write_atomic(key_path, key_pem, key_mode, key_owner, err)) return false;
    if (!cert_current && !write_atomic(cert_path, cert_pem, cert_mode, cert_owner, err)) return false;
    return true;
}

std::optional<std::string> read_file(const std::string& path, size_t max_bytes) {
    // O_NONBLOCK so that opening a FIFO does not wait for a writer; it is rejected below.
    core::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    struct stat st {};
    if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    if (st.st_size > 0 && static_cast<uint64_t>(st.st_size) > max_bytes) return std::nullopt;
    std::string out;
    char buf[16384];
    // Read to EOF rather than trusting st_size: the file may grow while we read it.
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::nullopt;
        if (n == 0) break;
        if (out.size() + static_cast<size_t>(n) > max_bytes) return std::nullopt;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

bool ensure_dir(const std::string& path, mode_t mode, std::string& err) {
    if (path.empty()) return fail(err, "mkdir", "\"\"", ENOENT);
    // Each prefix ending before a '/' (and the whole path) is one level; "a//b" and a trailing
    // slash give repeated prefixes, which simply exist by the time we get to them.
    for (size_t end = path.find('/', 1);; end = path.find('/', end + 1)) {
        std::string prefix = path.substr(0, end);
        if (::mkdir(prefix.c_str(), mode) != 0) {
            int e = errno;
            struct stat st {};
            if (e != EEXIST) return fail(err, "mkdir", prefix, e);
            if (::stat(prefix.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return fail(err, "mkdir", prefix, ENOTDIR);
        }
        if (end == std::string::npos) break;
    }
    return true;
}

size_t remove_stale_temps(const std::string& path, int64_t min_age_seconds) {
    const std::string dir = dir_of(path);
    // Appended, not "." + ...: g++ 12 at -O3 warns falsely (-Wrestrict) on literal + string.
    std::string prefix = ".";
    prefix += base_of(path);
    prefix += '.';
    const std::string_view suffix = ".tmp";
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return 0;
    size_t removed = 0;
    const int64_t cutoff = static_cast<int64_t>(::time(nullptr)) - min_age_seconds;
    while (const dirent* e = ::readdir(d)) {
        std::string_view name = e->d_name;
        if (name.size() < prefix.size() + suffix.size() || name.substr(0, prefix.size()) != prefix ||
            name.substr(name.size() - suffix.size()) != suffix)
            continue;
        // Only our own pattern: "<hex>" for the file, "prev.<hex>" for its .prev copy.
        std::string_view middle = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
        if (middle.substr(0, 5) == "prev.") middle.remove_prefix(5);
        if (middle.size() != kRandomHexChars || !is_hex(middle)) continue;
        struct stat st {};
        if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
        if (static_cast<int64_t>(st.st_mtime) > cutoff) continue;
        if (::unlinkat(::dirfd(d), e->d_name, 0) == 0) ++removed;
    }
    ::closedir(d);
    return removed;
}

}  // namespace sniroute::acme
