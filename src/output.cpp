// output: exclusive temporaries, checked writes and renames, and the table a termination signal
// cleans up from (the rules are in output.hpp).
#include "tp_mlp/output.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include <fcntl.h>
#include <pthread.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tp_mlp {
namespace {

[[noreturn]] void fail(const std::string& path, int error) {
  throw std::runtime_error(path + ": " + std::strerror(error));
}

// strerror's text as part of a sentence: "permission denied".
std::string reason(int error) {
  std::string text = std::strerror(error);
  if (!text.empty()) text[0] = char(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

std::string without_trailing_slashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

// dirname(3) on a copy.
std::string parent_of(const std::string& path) {
  std::string parent = without_trailing_slashes(path);
  const std::size_t slash = parent.rfind('/');
  if (slash == std::string::npos) return ".";
  parent.resize(slash);
  return parent.empty() ? "/" : without_trailing_slashes(parent);
}

std::string name_of(const std::string& path) {
  const std::string trimmed = without_trailing_slashes(path);
  return trimmed.substr(trimmed.rfind('/') + 1);
}

std::string join(const std::string& directory, const std::string& name) {
  return directory.back() == '/' ? directory + name : directory + "/" + name;
}

// ---- The files a termination signal removes.
//
// A signal handler may not allocate, so their paths live in a fixed table. A file and its entry
// change together in a Critical section, with the signals blocked in the thread making the
// change; but another thread (MPI has some) may take the signal meanwhile, so the handler first
// waits until no section is open, and after that none opens.
struct Entry {
  bool used = false;
  bool directory = false;
  char path[PATH_MAX] = {};
};
Entry table[64];
std::mutex table_mutex;  // between threads; the handler never takes it
std::atomic<int> open_sections{0};
std::atomic<bool> terminating{false};

constexpr int kTerminationSignals[] = {SIGTERM, SIGINT, SIGHUP};

sigset_t termination_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  for (int signal : kTerminationSignals) sigaddset(&signals, signal);
  return signals;
}

// Sections never nest: one open in a thread that holds one would wait for itself.
class Critical {
 public:
  Critical() {
    const sigset_t signals = termination_signals();
    pthread_sigmask(SIG_BLOCK, &signals, &saved_mask_);
    open_sections.fetch_add(1);
    if (terminating) {
      // Another thread's handler is removing our files and will end the process.
      open_sections.fetch_sub(1);
      for (;;) pause();
    }
    table_mutex.lock();
  }
  ~Critical() {
    table_mutex.unlock();
    open_sections.fetch_sub(1);
    pthread_sigmask(SIG_SETMASK, &saved_mask_, nullptr);
  }
  Critical(const Critical&) = delete;
  Critical& operator=(const Critical&) = delete;

 private:
  sigset_t saved_mask_;
};

// Found before the file is made, so that recording it cannot fail once it exists.
Entry& free_entry(const std::string& path) {
  if (path.size() >= PATH_MAX) fail(path, ENAMETOOLONG);
  for (Entry& entry : table)
    if (!entry.used) return entry;
  throw std::runtime_error(path + ": too many files being written at once");
}

void record(Entry& entry, const std::string& path, bool directory) {
  std::memcpy(entry.path, path.c_str(), path.size() + 1);
  entry.directory = directory;
  entry.used = true;
}

void forget(const std::string& path) {
  for (Entry& entry : table)
    if (entry.used && path == entry.path) entry.used = false;
}

void remove_ours_and_die(int signal) {
  terminating = true;
  while (open_sections != 0) {
  }
  for (Entry& entry : table)
    if (entry.used && !entry.directory) unlink(entry.path);
  // Deepest directory first: a parent's path is shorter than its children's.
  for (;;) {
    Entry* deepest = nullptr;
    for (Entry& entry : table)
      if (entry.used && entry.directory &&
          (!deepest || std::strlen(entry.path) > std::strlen(deepest->path)))
        deepest = &entry;
    if (!deepest) break;
    rmdir(deepest->path);
    deepest->used = false;
  }
  std::signal(signal, SIG_DFL);
  std::raise(signal);  // delivered when the handler returns, so the process dies by it
}

// ---- What a path names, and whether it may be written.

enum class Kind { standard_stream, in_place, replace };

struct Target {
  Kind kind = Kind::replace;
  int fd = -1;            // the standard stream
  std::string file;       // written in place, or replaced; symbolic links resolved
  std::string directory;  // where the replacement's temporary goes
  bool exists = false;    // and is `old`
  struct stat old {};
};

// The immutable and append-only attributes, which stop a rename even by root.
std::string attribute_problem(const std::string& path) {
  struct statx attributes;
  if (statx(AT_FDCWD, path.c_str(), 0, STATX_BASIC_STATS, &attributes) != 0) return "";
  const auto set = attributes.stx_attributes & attributes.stx_attributes_mask;
  if (set & STATX_ATTR_IMMUTABLE) return "it is immutable";
  if (set & STATX_ATTR_APPEND) return "it is append-only";
  return "";
}

// `what` is "files" or "directories", as the message should say.
std::string directory_problem(const std::string& directory, const char* what) {
  std::string why = attribute_problem(directory);
  if (why.empty() && access(directory.c_str(), W_OK | X_OK) != 0) why = reason(errno);
  // Permission bits do not tell everything (root passes access() on /proc, where nothing can be
  // created): make a uniquely named, empty directory, exclusively, and remove it at once.
  if (why.empty()) {
    std::string probe = join(directory, ".tp_mlp-probe.XXXXXX");
    if (mkdtemp(probe.data()) == nullptr)
      why = reason(errno);
    else
      rmdir(probe.c_str());
  }
  return why.empty() ? ""
                     : std::string("cannot create ") + what + " in " + directory + " (" + why + ")";
}

bool in_group(gid_t group) {
  if (group == getegid()) return true;
  std::vector<gid_t> groups(std::max(getgroups(0, nullptr), 0));
  const int count = getgroups(int(groups.size()), groups.data());
  for (int i = 0; i < count; ++i)
    if (groups[i] == group) return true;
  return false;
}

bool same_file(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

std::string find_new_file(const std::string& path, Target& target) {
  if (path.back() == '/') return "it names a directory";
  const std::string parent = parent_of(path);
  struct stat status;
  if (stat(parent.c_str(), &status) != 0)
    return errno == ENOENT ? "the directory " + parent + " does not exist"
                           : parent + ": " + reason(errno);
  if (!S_ISDIR(status.st_mode)) return parent + " is not a directory";
  char resolved[PATH_MAX];
  if (!realpath(parent.c_str(), resolved)) return parent + ": " + reason(errno);
  target.directory = resolved;
  target.file = join(target.directory, name_of(path));
  return directory_problem(target.directory, "files");
}

std::string find_existing_file(const std::string& path, const struct stat& status, Target& target) {
  char resolved[PATH_MAX];
  if (!realpath(path.c_str(), resolved)) return reason(errno);
  target.file = resolved;
  target.directory = parent_of(target.file);
  target.exists = true;
  target.old = status;
  if (std::string why = attribute_problem(target.file); !why.empty()) return why;
  if (access(target.file.c_str(), W_OK) != 0) return "it is not writable (" + reason(errno) + ")";
  if (geteuid() != 0 && status.st_uid != geteuid()) return "it belongs to another user";
  if (geteuid() != 0 && !in_group(status.st_gid)) return "it belongs to a group you are not in";
  return directory_problem(target.directory, "files");
}

// What writing `path` would touch, or why it must not be written. Opens nothing.
std::string find_target(const std::string& path, Target& target) {
  if (path.empty()) return "it is empty";
  struct stat status;
  if (path == "-") {
    target.kind = Kind::standard_stream;
    target.fd = STDOUT_FILENO;
    return fstat(STDOUT_FILENO, &status) == 0 ? "" : "standard output is closed";
  }
  if (stat(path.c_str(), &status) != 0) {
    if (errno != ENOENT && errno != ENOTDIR) return reason(errno);
    if (lstat(path.c_str(), &status) == 0) return "it is a symbolic link to nothing";
    return find_new_file(path, target);
  }
  if (S_ISDIR(status.st_mode)) return "it is a directory";
  for (int fd : {STDOUT_FILENO, STDERR_FILENO}) {
    struct stat standard;
    if (fstat(fd, &standard) == 0 && same_file(standard, status)) {
      target.kind = Kind::standard_stream;
      target.fd = fd;
      return "";
    }
  }
  if (S_ISSOCK(status.st_mode)) return "it is a socket";
  if (S_ISREG(status.st_mode)) return find_existing_file(path, status, target);
  target.kind = Kind::in_place;
  target.file = path;
  return access(path.c_str(), W_OK) == 0 ? "" : "it is not writable (" + reason(errno) + ")";
}

std::string random_suffix() {
  static constexpr char kLetters[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  unsigned char bytes[8];
  if (getrandom(bytes, sizeof bytes, 0) != sizeof bytes) fail("getrandom", errno);
  std::string suffix;
  for (unsigned char byte : bytes) suffix += kLetters[byte % (sizeof kLetters - 1)];
  return suffix;
}

// A new file only we can have made, recorded for the termination handler. O_EXCL refuses any
// existing file, a symbolic link included, so a name that is taken is never touched, only
// passed over. A replacement starts private (0600) and gets the old file's mode at commit; a new
// file is created 0666 for the umask or the directory's default ACL to restrict, as `>` would.
int create_temporary(const Target& target, const std::string& path, std::string& temporary) {
  constexpr std::size_t kNameKept = 200;  // .NAME.XXXXXXXX must fit in NAME_MAX, 255
  const std::string prefix = "." + name_of(target.file).substr(0, kNameKept) + ".";
  for (int attempt = 0; attempt < 100; ++attempt) {
    const std::string name = join(target.directory, prefix + random_suffix());
    Critical critical;
    Entry& entry = free_entry(name);
    const int fd = open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        target.exists ? 0600 : 0666);
    if (fd >= 0) {
      record(entry, name, false);
      temporary = name;
      return fd;
    }
    if (errno != EEXIST) fail(path, errno);
  }
  throw std::runtime_error(path + ": no unused temporary name in " + target.directory);
}

}  // namespace

std::string check_output_file(const std::string& path) {
  Target target;
  return find_target(path, target);
}

OutputFile::OutputFile(const std::string& path) : OutputFile(path, nullptr) {}

OutputFile::OutputFile(const std::string& path, FileSet* set) : path_(path), set_(set) {
  Target target;
  if (const std::string why = find_target(path, target); !why.empty())
    throw std::runtime_error(path + ": " + why);
  // Recorded first, so that nothing can fail after the temporary is handed to the set.
  if (set_) {
    member_ = set_->members_.size();
    set_->members_.push_back({name_of(path), "", ""});
  }
  try {
    switch (target.kind) {
      case Kind::standard_stream:
        std::fflush(target.fd == STDOUT_FILENO ? stdout : stderr);  // text printed so far first
        fd_ = target.fd;
        owns_fd_ = false;
        break;
      case Kind::in_place: {
        fd_ = open(target.file.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
        if (fd_ < 0) fail(path, errno);
        struct stat status;
        // A regular file swapped in since the check would be overwritten instead of replaced.
        if (fstat(fd_, &status) != 0 || S_ISREG(status.st_mode))
          throw std::runtime_error(path + ": it changed while being opened");
        break;
      }
      case Kind::replace:
        fd_ = create_temporary(target, path, temporary_);
        replaces_ = target.exists;
        mode_ = target.old.st_mode & 0777;
        owner_ = target.old.st_uid;
        group_ = target.old.st_gid;
        break;
    }
  } catch (...) {
    discard();
    if (set_) set_->members_.pop_back();
    throw;
  }
  if (set_) {
    set_->members_[member_].temporary = std::move(temporary_);
    set_->members_[member_].target = std::move(target.file);
    temporary_.clear();
  } else {
    target_ = std::move(target.file);
  }
}

OutputFile::~OutputFile() { discard(); }

void OutputFile::write(const void* data, std::size_t bytes) {
  if (committed_ || fd_ < 0) throw std::logic_error(path_ + ": written after commit");
  const char* next = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t written = ::write(fd_, next, bytes);
    if (written < 0) {
      if (errno == EINTR) continue;
      fail(path_, errno);
    }
    next += written;
    bytes -= std::size_t(written);
  }
}

void OutputFile::commit() {
  if (committed_ || fd_ < 0) throw std::logic_error(path_ + ": committed twice");
  close_checked();
  if (!temporary_.empty()) {
    Critical critical;
    if (std::rename(temporary_.c_str(), target_.c_str()) != 0) fail(path_, errno);
    forget(temporary_);
    temporary_.clear();
  }
  if (set_) set_->members_[member_].complete = true;
  committed_ = true;
}

void OutputFile::close_checked() {
  if (replaces_) {
    struct stat status;
    if (fstat(fd_, &status) != 0) fail(path_, errno);
    if ((status.st_uid != owner_ || status.st_gid != group_) && fchown(fd_, owner_, group_) != 0)
      fail(path_, errno);
    if (fchmod(fd_, mode_) != 0) fail(path_, errno);
  }
  if (!owns_fd_) return;
  const int fd = fd_;
  fd_ = -1;
  // Where a full disk or a network file system reports the last write's failure.
  if (close(fd) != 0) fail(path_, errno);
}

void OutputFile::discard() noexcept {
  if (owns_fd_ && fd_ >= 0) close(fd_);
  fd_ = -1;
  if (temporary_.empty()) return;
  Critical critical;
  unlink(temporary_.c_str());
  forget(temporary_);
  temporary_.clear();
}

std::string FileSet::check(const std::string& dir, const std::vector<std::string>& names) {
  if (dir.empty()) return "it is empty";
  struct stat status;
  if (stat(dir.c_str(), &status) == 0) {
    if (!S_ISDIR(status.st_mode)) return "it is not a directory";
    if (std::string why = directory_problem(dir, "files"); !why.empty()) return why;
    for (const std::string& name : names)
      if (std::string why = check_output_file(join(dir, name)); !why.empty())
        return why.insert(0, name + ": ");
    return "";
  }
  if (errno != ENOENT && errno != ENOTDIR) return reason(errno);
  if (lstat(dir.c_str(), &status) == 0) return "it is a symbolic link to nothing";
  for (std::string ancestor = parent_of(dir);; ancestor = parent_of(ancestor)) {
    if (stat(ancestor.c_str(), &status) == 0)
      return S_ISDIR(status.st_mode) ? directory_problem(ancestor, "directories")
                                     : ancestor + " is not a directory";
    const int error = errno;
    if ((error != ENOENT && error != ENOTDIR) || ancestor == parent_of(ancestor))
      return ancestor + ": " + reason(error);
    if (lstat(ancestor.c_str(), &status) == 0) return ancestor + " is a symbolic link to nothing";
  }
}

FileSet::FileSet(const std::string& dir) : dir_(dir) {
  if (const std::string why = check(dir); !why.empty()) throw std::runtime_error(dir + ": " + why);
  // Made from the nearest existing ancestor down, as absolute paths, which the termination
  // handler can remove whatever the working directory is by then.
  std::vector<std::string> missing;  // deepest first
  std::string existing = dir;
  struct stat status;
  for (; stat(existing.c_str(), &status) != 0; existing = parent_of(existing))
    missing.push_back(name_of(existing));
  char resolved[PATH_MAX];
  if (!realpath(existing.c_str(), resolved)) fail(dir, errno);
  created_.reserve(missing.size());
  try {
    std::string path = resolved;
    for (auto name = missing.rbegin(); name != missing.rend(); ++name) {
      path = join(path, *name);
      Critical critical;
      Entry& entry = free_entry(path);
      if (mkdir(path.c_str(), 0777) == 0) {
        record(entry, path, true);
        created_.push_back(path);
      } else if (errno != EEXIST) {  // made meanwhile by someone else: theirs, not ours
        fail(dir, errno);
      }
    }
  } catch (...) {
    remove_what_we_made();
    throw;
  }
}

FileSet::~FileSet() {
  if (!committed_) remove_what_we_made();
}

OutputFile FileSet::open(const std::string& name) {
  if (committed_) throw std::logic_error(dir_ + ": opened after commit");
  return OutputFile(join(dir_, name), this);
}

void FileSet::commit() {
  if (committed_) throw std::logic_error(dir_ + ": committed twice");
  for (const Member& member : members_)
    if (!member.complete)
      throw std::logic_error(join(dir_, member.name) + ": not committed before its set");
  Critical critical;
  for (Member& member : members_) {
    if (member.temporary.empty()) continue;
    if (std::rename(member.temporary.c_str(), member.target.c_str()) != 0) {
      const int error = errno;
      fail(join(dir_, member.name), error);
    }
    forget(member.temporary);
    member.temporary.clear();
  }
  for (const std::string& directory : created_) forget(directory);
  committed_ = true;
}

void FileSet::remove_what_we_made() noexcept {
  Critical critical;
  for (Member& member : members_) {
    if (member.temporary.empty()) continue;
    unlink(member.temporary.c_str());
    forget(member.temporary);
    member.temporary.clear();
  }
  for (auto directory = created_.rbegin(); directory != created_.rend(); ++directory) {
    rmdir(directory->c_str());  // only if empty: what others put there stays, and so does it
    forget(*directory);
  }
  created_.clear();
}

void remove_temporaries_on_termination() {
  struct sigaction action {};
  action.sa_handler = remove_ours_and_die;
  action.sa_mask = termination_signals();  // one cleanup at a time
  for (int signal : kTerminationSignals) {
    struct sigaction current {};
    sigaction(signal, nullptr, &current);
    if (current.sa_handler == SIG_DFL) sigaction(signal, &action, nullptr);
  }
}

}  // namespace tp_mlp
